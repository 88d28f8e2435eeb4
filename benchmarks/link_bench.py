"""Speed and memory of `simlink link` at 100k to 10M contacts, beside the cleartext baseline.

Each size is generated with ``simlink synth`` (medium errors) and encoded once (cached, not
timed). Every run happens in a fresh subprocess so its peak RSS is its own. Printed and
written to benchmarks/results/link_bench.json and .md: seconds per phase (load, train,
block, predict, cluster, write), pairs compared, comparisons per second (blocked pairs /
predict seconds), peak RSS, pairwise and B-cubed F1, the load average, and the same for the
cleartext baseline; then the slopes of pairs and of link time against contacts (log-log
least squares over the sizes run; issue 10 asks for <= 1.2).

    python benchmarks/link_bench.py --contacts 100000 1000000 3000000 --threads 2 --no-baseline
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simlink.link.block_caps import DEFAULT_CAP  # noqa: E402

HERE = Path(__file__).resolve().parent
CONTACTS_PER_PERSON = 3.03  # simlink synth default contact model (measured: 3,035,474 / 1,000,000)


def _child_encoded(folder: str, threads: int, memory_limit: str, temp_dir: str | None, block_cap: int) -> dict:
    import pandas as pd

    import linkeval
    from simlink.link import link_files

    encoded = [Path(folder) / f"{a}.parquet" for a in linkeval.AGENCIES]
    started = time.perf_counter()
    result = link_files(encoded, Path(folder) / "bench.duckdb", overwrite=True, charts=False,
                        threads=threads, memory_limit=memory_limit, temp_dir=temp_dir, block_cap=block_cap or None)
    wall = time.perf_counter() - started
    from rss import peak_rss_mb

    link_rss = peak_rss_mb()  # before the evaluation's pandas; this process's own peak
    import duckdb

    with duckdb.connect(str(Path(folder) / "bench.duckdb"), read_only=True) as con:
        assigned = con.execute("SELECT * FROM event_person").df()
    truth = pd.read_csv(Path(folder) / "truth.csv")
    quality = linkeval.pairwise_quality(assigned, truth)
    from simlink.evaluate import evaluate_clusters

    quality["bcubed_f1"] = evaluate_clusters(assigned.astype({"record_id": str}),
                                             truth.astype({"record_id": str})).bcubed_f1
    return {"seconds": result.seconds, "wall": wall, "counts": result.counts, "events": result.events,
            "persons": result.persons, "quality": quality, "decision": result.decision,
            "link_peak_rss_mb": link_rss}


def _child_cleartext(folder: str, threads: int) -> dict:
    import baseline_cleartext
    import linkeval

    started = time.perf_counter()
    out = baseline_cleartext.run([Path(folder) / f"{a}.csv" for a in linkeval.AGENCIES], Path(folder) / "truth.csv",
                                 thresholds=(0.95,), threads=threads)
    out["wall"] = time.perf_counter() - started
    return out


def child(kind: str, folder: str, threads: int, memory_limit: str, temp_dir: str | None, block_cap: int) -> None:
    sys.path.insert(0, str(HERE))
    out = (_child_encoded(folder, threads, memory_limit, temp_dir, block_cap) if kind == "encoded"
           else _child_cleartext(folder, threads))
    from rss import peak_rss_mb  # this process's own peak, not its parent's (benchmarks/rss.py)

    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out, default=str))


def run_child(kind: str, folder: Path, threads: int, memory_limit: str, temp_dir: Path | None = None,
              block_cap: int = DEFAULT_CAP) -> dict:
    load_before = os.getloadavg()[0]
    extra = ["--temp-dir", str(temp_dir)] if temp_dir else []
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), "--threads", str(threads),
                           "--memory-limit", memory_limit, "--block-cap", str(block_cap), *extra],
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]) | {"load_before": load_before, "load_after": os.getloadavg()[0]}
    raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-bench"))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--temp-dir", type=Path, default=None, help="DuckDB spill folder for link (default: the system's)")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of other sizes already in results/link_bench.json (sizes run separately)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"))
    parser.add_argument("--block-cap", type=int, default=DEFAULT_CAP, help="link's block-size cap (0: none)")
    parser.add_argument("--tag", default="", help="write results/link_bench_<tag>.json/.md instead of link_bench.*")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md (and slopes) from results/link_bench.json")
    args = parser.parse_args()
    if args.render:
        sys.path.insert(0, str(HERE))
        saved = json.loads((HERE / "results" / f"link_bench{args.tag and '_' + args.tag}.json").read_text())
        write_results(saved["rows"], saved["threads"], saved["memory_limit"], args.tag, saved.get("block_cap", DEFAULT_CAP))
        return
    if args.child:
        child(args.child[0], args.child[1], args.threads, args.memory_limit, str(args.temp_dir) if args.temp_dir else None,
              args.block_cap)
        return
    sys.path.insert(0, str(HERE))
    import linkeval

    rows = []
    for contacts in args.contacts:
        people = max(1, round(contacts / CONTACTS_PER_PERSON))
        folder = args.work / f"speed-{contacts}"
        started = time.perf_counter()
        linkeval.prepare(folder, people, 1, "medium")
        prepared = time.perf_counter() - started
        row = {"contacts_target": contacts, "people": people, "prepare_seconds": prepared,
               "encoded": run_child("encoded", folder, args.threads, args.memory_limit, args.temp_dir,
                                                  args.block_cap)}
        if not args.no_baseline:
            row["cleartext"] = run_child("cleartext", folder, args.threads, args.memory_limit)
        rows.append(row)
        e = row["encoded"]
        predict = e["seconds"].get("predict", 0) or 1e-9
        line = (f"{e['events']:,} contacts: encoded {sum(e['seconds'].values()):.1f} s "
                f"({', '.join(f'{k} {v:.1f}' for k, v in e['seconds'].items())}), "
                f"{e['counts']['blocked_pairs']:,} pairs, {e['counts']['blocked_pairs'] / predict:,.0f} comparisons/s, "
                f"peak RSS {e['peak_rss_mb']:,.0f} MB, F1 {e['quality']['f1']:.4f}, load {e['load_before']:.1f}")
        if "cleartext" in row:
            c = row["cleartext"]
            line += (f" | cleartext {sum(c['seconds'].values()):.1f} s, peak RSS {c['peak_rss_mb']:,.0f} MB, "
                     f"F1 {c['sweep']['0.95']['f1']:.4f}")
        print(line, flush=True)
    out = HERE / "results"
    name = f"link_bench{args.tag and '_' + args.tag}"
    if args.append and (out / f"{name}.json").exists():
        done = {r["contacts_target"] for r in rows}
        rows += [r for r in json.loads((out / f"{name}.json").read_text())["rows"] if r["contacts_target"] not in done]
        rows.sort(key=lambda r: r["contacts_target"])
    write_results(rows, args.threads, args.memory_limit, args.tag, args.block_cap)


def write_results(rows: list[dict], threads: int, memory_limit: str, tag: str = "", block_cap: int = DEFAULT_CAP) -> None:
    """results/link_bench[_tag].json and .md from the rows (``--render`` redoes only this)."""
    import linkeval

    out = HERE / "results"
    name = f"link_bench{tag and '_' + tag}"
    slopes = fitted_slopes(rows)
    print(f"slopes against contacts (log-log): {slopes}")
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"threads": threads, "memory_limit": memory_limit, "block_cap": block_cap,
                                                   "rows": rows, "slopes": slopes}, indent=1, default=str))
    lines = ["# simlink link: speed and memory (medium errors, threads %d, DuckDB memory_limit %s, block cap %s)"
             % (threads, memory_limit, block_cap or "none"), "",
             "Peak RSS: the whole benchmark child (link, then reading the output and scoring it with pandas); "
             "link RSS: the same child's peak when link_files returned (not recorded for runs before it was added).", "",
             "| contacts | distinct encodings | pairs compared | load | train | block | predict | cluster | write | total s | comparisons/s | link RSS MB | peak RSS MB | F1 | B-cubed F1 | load avg before / after | cleartext total s | cleartext RSS MB | cleartext F1 | encoded/cleartext time |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        e, s = row["encoded"], row["encoded"]["seconds"]
        total = sum(s.values())
        c = row.get("cleartext")
        ctotal = sum(c["seconds"].values()) if c else float("nan")
        link_rss = f"{e['link_peak_rss_mb']:,.0f}" if "link_peak_rss_mb" in e else "–"
        lines.append(
            f"| {e['events']:,} | {e['counts']['distinct_encodings']:,} | {e['counts']['blocked_pairs']:,} | "
            + " | ".join(f"{s.get(k, 0):.1f}" for k in ("load", "train", "block", "predict", "cluster", "write"))
            + f" | {total:.1f} | {e['counts']['blocked_pairs'] / (s.get('predict') or 1e-9):,.0f} | {link_rss} | {e['peak_rss_mb']:,.0f} | "
            f"{e['quality']['f1']:.4f} | {e['quality']['bcubed_f1']:.4f} | {e['load_before']:.1f} / {e['load_after']:.1f} | {ctotal:.1f} | "
            f"{c['peak_rss_mb'] if c else float('nan'):,.0f} | "
            f"{c['sweep']['0.95']['f1'] if c else float('nan'):.4f} | {total / ctotal if c else float('nan'):.2f} |")
    lines += ["", "Slopes against contacts, 100k contacts and more (log-log least squares): "
              + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items())]
    linkeval.write_markdown(out / f"{name}.md", lines)


def fitted_slopes(rows: list[dict], min_contacts: int = 100_000) -> dict[str, float]:
    """Exponents b of y ~ contacts^b for blocked pairs, link seconds and peak RSS, over the
    sizes of ``min_contacts`` and more (a smaller reference size is reported, not fitted)."""
    import numpy as np

    rows = [r for r in rows if r.get("contacts_target", r["encoded"]["events"]) >= min_contacts]
    if len(rows) < 2:
        return {}
    x = np.log([r["encoded"]["events"] for r in rows])
    out = {}
    for name, values in (("blocked_pairs", [r["encoded"]["counts"]["blocked_pairs"] for r in rows]),
                         ("link_seconds", [sum(r["encoded"]["seconds"].values()) for r in rows]),
                         ("peak_rss", [r["encoded"]["peak_rss_mb"] for r in rows])):
        out[name] = float(np.polyfit(x, np.log(values), 1)[0]) if all(v > 0 for v in values) else math.nan
    return out


if __name__ == "__main__":
    main()
