"""Start-up time of the ``simlink`` command: ``--help``, ``--version``, ``keygen``.

Each command runs N times in a fresh Python process (``python -m simlink ...`` with this
checkout first on the path), next to a bare ``python -c pass`` as the floor no command can
beat. Prints median and min wall seconds and writes benchmarks/results/cli_startup.json and
.md with the machine load (``uptime``). Target (issue 13): median <= 0.3 s.
Usage: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET_SECONDS = 0.3


def _run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load unknown (no uptime)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per command")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    py = [sys.executable]
    load_before = _load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="simlink-startup-") as tmp:
        commands = {
            "python -c pass (floor)": lambda i: py + ["-c", "pass"],
            "simlink --help": lambda i: py + ["-m", "simlink", "--help"],
            "simlink --version": lambda i: py + ["-m", "simlink", "--version"],
            "simlink keygen": lambda i: py + ["-m", "simlink", "keygen", "-o", str(Path(tmp) / f"k{i}.key")],
            "simlink link --help": lambda i: py + ["-m", "simlink", "link", "--help"],
            "python -c 'import simlink'": lambda i: py + ["-c", "import simlink"],
        }
        _run(commands["simlink --help"](0), env)  # warm the file cache and bytecode
        for name, make in commands.items():
            times = [_run(make(i), env) for i in range(args.runs)]
            rows.append({"command": name, "runs": args.runs, "median_s": round(statistics.median(times), 4),
                         "min_s": round(min(times), 4), "max_s": round(max(times), 4)})
    load_after = _load()
    doc = {"target_median_s": TARGET_SECONDS, "python": platform.python_version(), "cpus": os.cpu_count(),
           "load_before": load_before, "load_after": load_after, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    lines = ["# CLI start-up (benchmarks/cli_startup.py)", "",
             f"Python {doc['python']}, {doc['cpus']} CPUs; load before: `{load_before}`; after: `{load_after}`.",
             f"Each command in a fresh process, {args.runs} runs; target median <= {TARGET_SECONDS} s.", "",
             "| command | median s | min s | max s |", "|---|---|---|---|"]
    lines += [f"| {r['command']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    (RESULTS / "cli_startup.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
