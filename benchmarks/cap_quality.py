"""Linkage quality at each block-size cap, on the same encoded files (issue 10).

A cap bounds the candidate pairs per encoding; what it must not do is cost the published
numbers. For each data set and cap, ``simlink link`` runs on the same encoded files and the
result is scored against the truth: pairwise and B-cubed P/R/F1 and the relative error of the
headline counts (people, people in 2+ services, people with repeat contacts), beside the
candidate pairs and link seconds. Small data sets matter here too: a frequent contacter's
own distinct encodings can fill a block at any size.

    python benchmarks/cap_quality.py --caps 0 100 32 --set 20000:7:medium --set 20000:7:high
    python benchmarks/cap_quality.py --caps 100 32 --folder /work/scale-data/speed-1000000

Writes benchmarks/results/cap_quality_<tag>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import linkeval  # noqa: E402
from cluster_rules import headline  # noqa: E402


def run(folder: Path, cap: int | None) -> dict:
    import duckdb
    import pandas as pd

    from simlink.evaluate import evaluate_clusters
    from simlink.link import link_files

    started = time.perf_counter()
    result = link_files([folder / f"{a}.parquet" for a in linkeval.AGENCIES], folder / "cap_quality.duckdb",
                        overwrite=True, charts=False, block_cap=cap, progress=False)
    seconds = time.perf_counter() - started
    with duckdb.connect(str(folder / "cap_quality.duckdb"), read_only=True) as con:
        assigned = con.execute("SELECT * FROM event_person").df()
    truth = pd.read_csv(folder / "truth.csv")
    quality = linkeval.pairwise_quality(assigned, truth)
    bcubed = evaluate_clusters(assigned.astype({"record_id": str}), truth.astype({"record_id": str}))
    got = headline(assigned)
    true = headline(truth.rename(columns={"person_id": "person_key"}))
    return {"cap": cap, "events": result.events, "blocked_pairs": result.counts.get("blocked_pairs", 0),
            "seconds": seconds, "pairwise": quality, "bcubed_f1": bcubed.bcubed_f1,
            "count_errors": {k: (got[k] - true[k]) / true[k] for k in true}, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--caps", type=int, nargs="+", default=[0, 100, 32], help="0: no cap")
    parser.add_argument("--set", action="append", default=[], help="PEOPLE:SEED:ERRORS of a simlink synth set")
    parser.add_argument("--folder", type=Path, action="append", default=[], help="a prepared folder (encoded files, truth)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-bench"))
    parser.add_argument("--tag", default="20k")
    args = parser.parse_args()
    folders = list(args.folder)
    for spec in args.set:
        people, seed, errors = spec.split(":")
        folder = args.work / f"q-{people}-{seed}-{errors}"
        linkeval.prepare(folder, int(people), int(seed), errors)
        folders.append(folder)
    rows = []
    for folder in folders:
        for cap in args.caps:
            row = {"data": folder.name} | run(folder, cap or None)
            rows.append(row)
            q = row["pairwise"]
            print(f"{folder.name} cap {cap or 'none'}: {row['blocked_pairs']:,} pairs, F1 {q['f1']:.4f} "
                  f"(P {q['precision']:.4f} R {q['recall']:.4f}), B-cubed {row['bcubed_f1']:.4f}, "
                  f"counts {row['count_errors']}, {row['seconds']:.1f} s, load {row['load']:.1f}", flush=True)
    out = HERE / "results"
    (out / f"cap_quality_{args.tag}.json").write_text(json.dumps(rows, indent=1))
    lines = ["# Linkage quality by block-size cap (same encoded files per data set)", "",
             "| data | cap | contacts | candidate pairs | pair F1 | precision | recall | B-cubed F1 | people err | 2+ services err | repeat err | link s | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        q, e = r["pairwise"], r["count_errors"]
        lines.append(f"| {r['data']} | {r['cap'] or 'none'} | {r['events']:,} | {r['blocked_pairs']:,} | {q['f1']:.4f} | "
                     f"{q['precision']:.4f} | {q['recall']:.4f} | {r['bcubed_f1']:.4f} | {e['people']:+.2%} | "
                     f"{e['people_2plus_services']:+.2%} | {e['repeat_contact_people']:+.2%} | {r['seconds']:.1f} | {r['load']:.1f} |")
    linkeval.write_markdown(out / f"cap_quality_{args.tag}.md", lines)


if __name__ == "__main__":
    main()
