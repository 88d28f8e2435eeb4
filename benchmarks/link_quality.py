"""Quality of encoded linkage vs the cleartext Splink baseline on the same synthetic data.

For each error level: generate + encode (cached), measure pair completeness of the blocking
rules, link once keeping pairs with match probability >= 0.01, then cluster at several
thresholds and score pairwise P/R/F1 against the truth; run the cleartext baseline on the
same CSVs. Writes benchmarks/results/link_quality.json and .md.

    python benchmarks/link_quality.py --people 20000 --levels low medium high
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

import linkeval
from simlink.link import DEFAULT_THRESHOLD, link_files
from simlink.schema import load_schema

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)


def encoded_run(data: dict, out: Path) -> dict:
    keep: dict = {}
    result = link_files(data["encoded"], out / "link.duckdb", overwrite=True, keep_probability=0.01,
                        _keep_working=keep, charts=False)
    truth = pd.read_csv(data["truth"])
    sweep = {}
    for t in THRESHOLDS:
        assigned = linkeval.cluster_at(keep["scored"], keep["events"], t)
        sweep[str(t)] = linkeval.pairwise_quality(assigned, truth)
    return {"seconds": result.seconds, "counts": result.counts, "sweep": sweep,
            "reduction_ratio": linkeval.reduction_ratio(result.counts["blocked_pairs"], result.distinct_encodings)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--levels", nargs="+", default=["low", "medium", "high"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-bench"))
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    import baseline_cleartext

    results = {}
    schema = load_schema(None)
    for level in args.levels:
        folder = args.work / f"q-{args.people}-{args.seed}-{level}"
        data = linkeval.prepare(folder, args.people, args.seed, level)
        started = time.perf_counter()
        blocking = linkeval.blocking_quality(data["encoded"], data["truth"], [b.name for b in schema.blocking])
        encoded = encoded_run(data, folder)
        row = {"generator": data["generator"], "blocking": blocking, "encoded": encoded}
        if not args.no_baseline:
            row["cleartext"] = baseline_cleartext.run(data["csv"], data["truth"], thresholds=THRESHOLDS)
        row["seconds_total"] = time.perf_counter() - started
        results[level] = row
        enc = encoded["sweep"][str(DEFAULT_THRESHOLD)]
        line = (f"{level}: pair completeness {blocking['pair_completeness']:.4f} (contact pairs "
                f"{blocking['event_pair_completeness']:.4f}), reduction ratio "
                f"{encoded['reduction_ratio']:.6f}; encoded F1 {enc['f1']:.4f} (P {enc['precision']:.4f} R {enc['recall']:.4f})")
        if "cleartext" in row:
            clear = row["cleartext"]["sweep"][str(DEFAULT_THRESHOLD)]
            line += f"; cleartext F1 {clear['f1']:.4f} (P {clear['precision']:.4f} R {clear['recall']:.4f})"
        print(line, flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "link_quality.json").write_text(json.dumps({"people": args.people, "seed": args.seed, "results": results},
                                                      indent=1, default=str))
    lines = [f"# Linkage quality, {args.people:,} people, seed {args.seed}", "",
             "| errors | threshold | encoded P | encoded R | encoded F1 | cleartext P | cleartext R | cleartext F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for level, row in results.items():
        for t in THRESHOLDS:
            e = row["encoded"]["sweep"][str(t)]
            c = row.get("cleartext", {}).get("sweep", {}).get(str(t), {})
            lines.append(f"| {level} | {t} | {e['precision']:.4f} | {e['recall']:.4f} | {e['f1']:.4f} | "
                         f"{c.get('precision', float('nan')):.4f} | {c.get('recall', float('nan')):.4f} | {c.get('f1', float('nan')):.4f} |")
    lines += ["", "| errors | pair completeness (distinct encodings) | pair completeness (contact pairs) | reduction ratio | distinct encodings | blocked pairs |",
              "|---|---|---|---|---|---|"]
    for level, row in results.items():
        lines.append(f"| {level} | {row['blocking']['pair_completeness']:.4f} | {row['blocking']['event_pair_completeness']:.4f} | "
                     f"{row['encoded']['reduction_ratio']:.6f} | "
                     f"{row['encoded']['counts']['distinct_encodings']:,} | {row['encoded']['counts']['blocked_pairs']:,} |")
    linkeval.write_markdown(out / "link_quality.md", lines)


if __name__ == "__main__":
    main()
