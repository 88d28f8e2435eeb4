"""Predict in slices against one pass: peak RSS, DuckDB spill and predict seconds.

`simlink link` scores the blocked pairs in slices of about ``PREDICT_SLICE_PAIRS`` on DuckDB
(simlink/link/model.py). This runs link on one encoded folder (four agency parquet files and
truth.csv, e.g. from benchmarks/link_bench.py) once per slice size, each in a fresh child
process so its peak RSS (VmHWM) is its own, with DuckDB's temporary folder on a folder of
its own that a thread polls (largest total bytes on disk during the run, and during
predict). A first one-pass run trains the model; every compared run reuses it, so the
scored pairs must match (kept pairs and persons are printed to show it) and training's
memory stays out of the compared peaks. Printed and written to
benchmarks/results/predict_slices_<name>.json and .md with the load average.

    nice -n 5 python benchmarks/predict_slices.py /work/scale-data/speed-1000000 \\
        --temp-dir /work/chunk-tmp --slice-pairs 0 5000000 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENCIES = ("police", "ed", "ambulance", "mental_health")


def folder_bytes(folder: Path) -> int:
    """Bytes on disk under ``folder`` (allocated blocks: DuckDB's spill files can be sparse)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # removed while walking
                pass
    return total


class SpillWatch:
    """Polls a folder's size from a thread; keeps (seconds since start, bytes) samples."""

    def __init__(self, folder: Path, every: float = 0.25) -> None:
        self.folder, self.every = folder, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self.started, folder_bytes(self.folder)))
            self._stop.wait(self.every)

    def __enter__(self) -> "SpillWatch":
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((b for t, b in self.samples if start <= t <= end), default=0)


def child(folder: Path, out: Path, temp_dir: Path, slice_pairs: int, model: Path | None, threads: int,
          memory_limit: str) -> dict:
    sys.path.insert(0, str(HERE))
    from rss import peak_rss_mb

    from simlink.link import link_files

    encoded = [folder / f"{a}.parquet" for a in AGENCIES]
    with SpillWatch(temp_dir) as watch:
        started = time.perf_counter()
        result = link_files(encoded, out, overwrite=True, charts=False, threads=threads, memory_limit=memory_limit,
                            temp_dir=temp_dir, model=model, predict_slice_pairs=slice_pairs or 10**15)
        wall = time.perf_counter() - started
    rss = peak_rss_mb()
    # phases run in this order; their cumulative seconds bound predict on the watch's clock
    order = [p for p in ("load", "train", "block", "predict") if p in result.seconds]
    before = sum(result.seconds[p] for p in order[:-1])
    predict_window = (before, before + result.seconds["predict"] + 0.5)
    return {"slice_pairs": slice_pairs or None, "seconds": result.seconds, "wall": wall, "counts": result.counts,
            "persons": result.persons, "events": result.events, "peak_rss_mb": rss,
            "temp_peak_bytes": watch.peak(), "temp_peak_bytes_predict": watch.peak(*predict_window),
            "temp_samples": len(watch.samples)}


def run_child(args, slice_pairs: int, out: Path, model: Path | None) -> dict:
    temp = args.temp_dir / f"run-{slice_pairs}"
    temp.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    cmd = [sys.executable, __file__, str(args.folder), "--child", str(slice_pairs), "--out", str(out),
           "--temp-dir", str(temp), "--threads", str(args.threads), "--memory-limit", args.memory_limit]
    if model is not None:
        cmd += ["--model", str(model)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(HERE.parent)})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]) | {"load_before": load_before, "load_after": os.getloadavg()}
    raise RuntimeError(f"run with slice {slice_pairs} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--temp-dir", type=Path, required=True, help="DuckDB spill folders go under it, one per run")
    parser.add_argument("--slice-pairs", type=int, nargs="+", default=[0, 5_000_000, 2_000_000],
                        help="0: one pass (no slicing)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--name", default=None, help="results file suffix (default: the folder name)")
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="reuse this model file instead of training first")
    args = parser.parse_args()
    if args.child is not None:
        found = child(args.folder, args.out, args.temp_dir, args.child, args.model, args.threads, args.memory_limit)
        print("RESULT " + json.dumps(found, default=str))
        return
    sys.path.insert(0, str(HERE))
    import linkeval

    out_db = args.temp_dir / "predict_slices.duckdb"
    # A first one-pass run trains the model; every compared run reuses it (same pairs
    # scored, and training's own memory out of the compared peaks).
    if args.model is None:
        rows = [run_child(args, 0, out_db, None) | {"trained": True}]
        model = args.temp_dir / "predict_slices.model.json"
        model.write_text(Path(str(out_db) + ".model.json").read_text())
    else:  # a model trained before (at another memory limit, say)
        rows, model = [], args.model
    for slice_pairs in [None, *args.slice_pairs] if rows else args.slice_pairs:
        row = rows[0] if slice_pairs is None else run_child(args, slice_pairs, out_db, model)
        if slice_pairs is not None:
            rows.append(row)
        slice_pairs = 0 if slice_pairs is None else slice_pairs
        s, c = row["seconds"], row["counts"]
        print(f"slice {slice_pairs or 'none'}: {c.get('predict_slices', 1)} slices of {c['blocked_pairs']:,} pairs, "
              f"predict {s['predict']:.1f} s, total {sum(s.values()):.1f} s, peak RSS {row['peak_rss_mb']:,.0f} MB, "
              f"temp peak {row['temp_peak_bytes'] / 1e6:,.0f} MB (predict {row['temp_peak_bytes_predict'] / 1e6:,.0f} MB), "
              f"kept {c['pairs_kept']:,}, persons {row['persons']:,}, load {row['load_before'][0]:.2f} / "
              f"{row['load_after'][0]:.2f}", flush=True)
    name = args.name or args.folder.name
    results = HERE / "results"
    doc = {"folder": str(args.folder), "threads": args.threads, "memory_limit": args.memory_limit, "rows": rows}
    (results / f"predict_slices_{name}.json").write_text(json.dumps(doc, indent=1, default=str))
    lines = [f"# link predict in slices: {args.folder.name} (threads {args.threads}, memory_limit {args.memory_limit})",
             "", "Each row a fresh child process (`benchmarks/predict_slices.py`); the first row trains "
             "(one pass), the others reuse its model. Temp: largest bytes on disk in DuckDB's temporary folder (polled every "
             "0.25 s), over the run and during predict. Load: 1-minute load average before / after.", "",
             "| slice pairs | slices | blocked pairs | predict s | total s | peak RSS MB | temp peak MB | "
             "temp peak in predict MB | pairs kept | persons | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, c = r["seconds"], r["counts"]
        lines.append(f"| {r['slice_pairs'] or 'one pass'}{' (trains)' if r.get('trained') else ''} | "
                     f"{c.get('predict_slices', 1)} | {c['blocked_pairs']:,} | {s['predict']:.1f} | "
                     f"{sum(s.values()):.1f} | {r['peak_rss_mb']:,.0f} | {r['temp_peak_bytes'] / 1e6:,.0f} | "
                     f"{r['temp_peak_bytes_predict'] / 1e6:,.0f} | {c['pairs_kept']:,} | {r['persons']:,} | "
                     f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f} |")
    linkeval.write_markdown(results / f"predict_slices_{name}.md", lines)


if __name__ == "__main__":
    main()
