"""DuckDB vs Splink's Spark backend (local mode): same model? how fast, phase by phase?

For each size, synthetic agencies (``simlink synth``, medium errors) are generated and
encoded once (cached). Then, each in its own subprocess (so the peak RSS is its own):

* ``duckdb``: ``link_files(backend="duckdb")`` — the default path;
* ``spark``: ``link_files(backend="spark")`` trained on Spark, then in the same JVM
  ``link_files(backend="spark", model=<DuckDB's model file>)`` (reuse without training).

Printed and written to benchmarks/results/spark_link.json: seconds per phase (``start`` is
the Spark session start plus the hand-over of the encodings), pairs compared, pairs at or
above the threshold, pairwise F1 against the truth, peak RSS of Python and of its children
(the Spark JVM), the largest differences between the two trained models (m, u, match weight per
comparison level, prior) and the agreement of the reused-model clusters with DuckDB's.

    python benchmarks/spark_link.py --contacts 10000 100000 --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTACTS_PER_PERSON = 3.03  # simlink synth default contact model (see link_bench.py)


def _run(folder: Path, name: str, backend: str, threads: int, memory_limit: str, model: Path | None = None) -> dict:
    import duckdb

    from simlink.evaluate import evaluate_files
    from simlink.link import link_files

    encoded = [folder / f"{a}.parquet" for a in ("police", "ambulance", "ed", "mental_health")]
    output = folder / f"{name}.duckdb"
    started = time.perf_counter()
    result = link_files(encoded, output, overwrite=True, charts=False, backend=backend, model=model,
                        threads=threads, memory_limit=memory_limit)
    wall = time.perf_counter() - started
    quality = evaluate_files(output, folder / "truth.csv")
    with duckdb.connect(str(output), read_only=True) as con:
        stats = dict(con.execute("SELECT statistic, value FROM link_stats").fetchall())
    return {"backend": backend, "model_reused": model is not None, "seconds": result.seconds, "wall": wall,
            "events": result.events, "persons": result.persons, "counts": result.counts,
            "pairs_at_or_above_threshold": stats["pairs_at_or_above_threshold"],
            "pair_precision": quality.pair_precision, "pair_recall": quality.pair_recall, "pair_f1": quality.pair_f1,
            "output": str(output), "model_file": str(result.model_file)}


def child(kind: str, folder: Path, threads: int, memory_limit: str) -> None:
    if kind == "duckdb":
        runs = [_run(folder, "duckdb", "duckdb", threads, memory_limit)]
    else:
        runs = [_run(folder, "spark", "spark", threads, memory_limit),
                _run(folder, "spark_reuse", "spark", threads, memory_limit,
                     model=folder / "duckdb.duckdb.model.json")]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rss import peak_rss_mb  # this process's own peak (ru_maxrss carries the parent's)

    usage = {"peak_rss_mb": peak_rss_mb(),
             "peak_rss_children_mb": max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                                         _jvm_peak_rss_mb())}
    print("RESULT " + json.dumps({"runs": runs, **usage}, default=str))


def _jvm_peak_rss_mb() -> float:
    """Peak RSS of the Spark JVM, a child not yet reaped when the child reports."""
    try:
        from pyspark import SparkContext

        pid = SparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (ImportError, AttributeError, OSError, ValueError):
        pass
    return 0.0


def run_child(kind: str, folder: Path, threads: int, memory_limit: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), "--threads", str(threads),
                           "--memory-limit", memory_limit], capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-3000:]}")


def model_differences(a_path: Path, b_path: Path) -> dict:
    """Largest absolute differences between two trained models, level by level."""
    from simlink.link import read_model_file

    a, b = read_model_file(a_path), read_model_file(b_path)  # either model-file format
    worst = {"m": 0.0, "u": 0.0, "match_weight": 0.0}
    where = {}
    for ca, cb in zip(a["comparisons"], b["comparisons"]):
        for la, lb in zip(ca["comparison_levels"], cb["comparison_levels"]):
            if la.get("is_null_level") or not all(f"{k}_probability" in x for k in "mu" for x in (la, lb)):
                continue  # a level never observed in training has no m or u
            for key in ("m", "u"):
                d = abs(la[f"{key}_probability"] - lb[f"{key}_probability"])
                if d > worst[key]:
                    worst[key], where[key] = d, la["label_for_charts"]
            weight = [math.log2(x["m_probability"] / x["u_probability"]) for x in (la, lb)]
            d = abs(weight[0] - weight[1])
            if d > worst["match_weight"]:
                worst["match_weight"], where["match_weight"] = d, la["label_for_charts"]
    prior = (a["probability_two_random_records_match"], b["probability_two_random_records_match"])
    return {"max_abs_diff": worst, "at_level": where, "prior": prior}


def cluster_agreement(reference: Path, other: Path) -> dict:
    """How far ``other``'s persons are from ``reference``'s (pairwise, taking it as truth)."""
    from simlink.evaluate import evaluate_clusters, read_predicted

    ref = read_predicted(reference).rename(columns={"person_key": "person_id"})
    got = read_predicted(other)
    q = evaluate_clusters(got, ref)
    return {"pair_precision": q.pair_precision, "pair_recall": q.pair_recall, "pair_f1": q.pair_f1,
            "persons": (q.true_persons, q.predicted_persons),
            "identical": q.pair_f1 == 1.0 and q.true_persons == q.predicted_persons}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-spark-bench"))
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        child(args.child[0], Path(args.child[1]), args.threads, args.memory_limit)
        return
    sys.path.insert(0, str(HERE))
    import os

    import linkeval

    rows = []
    for contacts in args.contacts:
        people = max(1, round(contacts / CONTACTS_PER_PERSON))
        folder = args.work / f"spark-{contacts}"
        linkeval.prepare(folder, people, 1, "medium")
        load_before = os.getloadavg()[0]
        duck = run_child("duckdb", folder, args.threads, args.memory_limit)
        spark = run_child("spark", folder, args.threads, args.memory_limit)
        d, s, reuse = duck["runs"][0], spark["runs"][0], spark["runs"][1]
        row = {"contacts_target": contacts, "people": people, "load_average_1min_before": load_before,
               "load_average_1min_after": os.getloadavg()[0],
               "duckdb": d | {k: duck[k] for k in ("peak_rss_mb", "peak_rss_children_mb")},
               "spark": s | {k: spark[k] for k in ("peak_rss_mb", "peak_rss_children_mb")},
               "spark_reusing_duckdb_model": reuse,
               "models": model_differences(Path(d["model_file"]), Path(s["model_file"])),
               "clusters_spark_vs_duckdb": cluster_agreement(Path(d["output"]), Path(s["output"])),
               "clusters_spark_reuse_vs_duckdb": cluster_agreement(Path(d["output"]), Path(reuse["output"]))}
        rows.append(row)
        for label, r in (("duckdb", d), ("spark", s), ("spark+duckdb model", reuse)):
            print(f"{r['events']:,} contacts {label:>18}: {sum(r['seconds'].values()):6.1f} s "
                  f"({', '.join(f'{k} {v:.1f}' for k, v in r['seconds'].items())}); "
                  f"{r['counts']['blocked_pairs']:,} pairs, {r['pairs_at_or_above_threshold']:,} >= threshold, "
                  f"{r['persons']:,} persons, F1 {r['pair_f1']:.4f}", flush=True)
        print(f"  models: {row['models']['max_abs_diff']}; reuse vs duckdb clusters: "
              f"{row['clusters_spark_reuse_vs_duckdb']}; load {load_before:.1f} -> {row['load_average_1min_after']:.1f}",
              flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "spark_link.json").write_text(json.dumps(
        {"threads": args.threads, "memory_limit": args.memory_limit, "cores": os.cpu_count(),
         "note": "machine shared with other jobs; see load_average_* per row", "rows": rows},
        indent=1, default=str))


if __name__ == "__main__":
    main()
