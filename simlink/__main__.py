from simlink.cli import main

main()
