"""The whole pipeline in Python: agencies' files -> encode -> link -> protected counts.

Usage: python examples/pipeline.py [FOLDER] [PEOPLE]   (synthetic agencies stand in for real ones)
"""
import sys
from pathlib import Path

import simlink

out = Path(sys.argv[1] if len(sys.argv) > 1 else "simlink-example")
people = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
if out.exists():
    sys.exit(f"{out} exists: remove it or name another folder")
agencies = ["police", "ambulance", "ed", "mental_health"]

simlink.synthesise(out / "synth", people=people, seed=1)      # each agency's own CSV, plus truth.csv
key = simlink.generate_key_file(out / "shared.key")           # shared by the agencies, never the linkage unit
for agency in agencies:                                       # at each agency, offline, shipped schema
    simlink.encode_file(out / "synth" / f"{agency}.csv", out / f"{agency}.parquet", agency=agency, key_file=key)
linked = simlink.link_files([out / f"{a}.parquet" for a in agencies], out / "linkage.duckdb")  # no key needed
counts = simlink.release(out / "linkage.duckdb")              # suppression and rounding by default
simlink.write_report(counts, out / "report")
print(linked.line())
print(counts.to_text())
quality = simlink.evaluate_files(out / "linkage.duckdb", out / "synth" / "truth.csv")  # synthetic data only
print(f"pairwise F1 against the synthetic truth: {quality.pair_f1:.4f}")
