"""The reviewers' benchmark suite: one command runs every published figure, beside the peers.

    python -m benchmarks                 # quick mode (the default): about 10 minutes on 2 cores
    python -m benchmarks --mode full     # the sizes the docs quote: about an hour
    python -m benchmarks --smoke         # tiny sizes, for the test of the plumbing (seconds)

Sections (``--only`` picks some): ``quality`` (FEBRL4, FEBRL3, synth low/medium/high: simlink
against cleartext Splink, pairwise and B-cubed P/R/F1, headline-count errors), ``peers``
(clkhash + anonlink on the FEBRL files, when a Python that imports them is found),
``speed`` (time and peak memory of synth, encode, link phases and counts at several sizes,
fitted slopes), ``privacy`` (the audit's linkage-unit attacks against blind guess and random
draw, per candidate schema) and ``counts`` (disclosure control across releases). A failing
section is recorded with its error and the others still run.

Writes benchmarks/results/suite_<mode>.json and .md and suite_<mode>_*.png (``--out`` moves
them), with the machine, load before and after, package versions, seeds and git commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [p for p in (str(ROOT), str(HERE)) if p not in sys.path]

import suite_report  # noqa: E402
import suite_sections as sections  # noqa: E402

SECTIONS = ("quality", "peers", "speed", "privacy", "counts")
ALL_DATA = ["febrl4", "febrl3", "synth-low", "synth-medium", "synth-high"]
MODES: dict[str, dict] = {
    "quick": {"quality": {"data": ALL_DATA, "people": 5000, "seed": 7, "cleartext": True},
              "peers": {"data": ALL_DATA, "thresholds": [0.75, 0.8, 0.85, 0.9], "headline": 0.8},
              "speed": {"contacts": [30_000, 100_000, 300_000], "threads": 2, "memory_limit": "4GB", "cleartext": True},
              "privacy": {"candidates": ["default", "v1_unhardened", "v2_bloom_names"], "people": 10_000, "keys": 1,
                          "seed": 21, "list_seed": 22},
              "counts": {"events": [100_000, 1_000_000]}},
    "full": {"quality": {"data": ALL_DATA, "people": 20_000, "seed": 7, "cleartext": True},
             "peers": {"data": ALL_DATA, "thresholds": [0.75, 0.8, 0.85, 0.9], "headline": 0.8},
             "speed": {"contacts": [100_000, 300_000, 1_000_000], "threads": 2, "memory_limit": "5GB",
                       "cleartext": True},
             "privacy": {"candidates": ["default", "v1_unhardened", "v2_bloom_names", "v2_wide", "v2_partial_name_keys"], "people": 20_000,
                         "keys": 3, "seed": 21, "list_seed": 22},
             "counts": {"events": [1_000_000, 3_000_000]}},
    "smoke": {"quality": {"data": ["synth-medium"], "people": 300, "seed": 7, "cleartext": True},
              "peers": {"data": ["synth-medium"], "thresholds": [0.8], "headline": 0.8},
              "speed": {"contacts": [2_000], "threads": 1, "memory_limit": "1GB", "cleartext": False},
              "privacy": {"candidates": ["default"], "people": 300, "keys": 1, "seed": 21, "list_seed": 22},
              "counts": {"events": [5_000]}},
}
PACKAGES = ("simlink", "splink", "duckdb", "pandas", "numpy", "pyarrow", "scipy", "recordlinkage", "matplotlib")


def _git(*args: str) -> str:
    run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
    return run.stdout.strip() if run.returncode == 0 else ""


def environment() -> dict:
    """What a reader needs to compare runs: machine, versions, commit."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gb = None
    return {"machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
                        "memory_gb": round(memory_gb, 1) if memory_gb else None,
                        "python": platform.python_version()},
            "versions": versions,
            "git": {"commit": _git("rev-parse", "HEAD") or "unknown", "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
                    "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_section(name: str, results: dict, job) -> None:
    """Run one section, timing it and recording the load; an error is recorded, not raised."""
    entry = {"load_before": _load()}
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name} (load {entry['load_before'][0]:.1f})", flush=True)
    try:
        entry["result"] = job()
        entry["status"] = "ok"
    except Exception as exc:  # a broken section must not lose the others' figures
        entry["status"] = "error"
        entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["traceback"] = traceback.format_exc(limit=6)
        print(f"  {name} failed: {entry['error']}", flush=True)
    entry["seconds"] = round(time.perf_counter() - started, 1)
    entry["load_after"] = _load()
    results["sections"][name] = entry


def run(mode: str, only: list[str], work: Path, peers_python: str | None) -> dict:
    cfg = MODES[mode]
    results: dict = {"suite": "simlink benchmark suite", "mode": mode, "config": cfg,
                     "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
                     "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     **environment(), "load_before": _load(),
                     "seeds": {"quality_synth": cfg["quality"]["seed"], "speed_synth": 1,
                               "privacy_target": cfg["privacy"]["seed"], "privacy_list": cfg["privacy"]["list_seed"],
                               "counts_db": 0,
                               "keys": "quality and speed: a fresh random key per run (as a user would); privacy: "
                                       "keys derived from the key index (linkage_unit_attack.py); peers: a fresh "
                                       "random clkhash secret"},
                     "sections": {}}
    started = time.perf_counter()
    q = cfg["quality"]
    if "quality" in only:
        run_section("quality", results, lambda: [
            _progress(sections.quality(d, work, q["people"], q["seed"], q["cleartext"])) for d in q["data"]])
    if "peers" in only:
        python, reason = sections.find_peers_python(peers_python)
        results["peers_python"] = {"python": python, "reason": reason}
        if python is None:
            print(f"  peers skipped: {reason}", flush=True)
            results["sections"]["peers"] = {"status": "skipped", "reason": reason, "load_before": _load(),
                                            "load_after": _load(), "seconds": 0.0}
        else:
            p = cfg["peers"]
            run_section("peers", results, lambda: [
                _progress(sections.peers(d, work, q["people"], q["seed"], python, p["thresholds"], p["headline"]))
                for d in p["data"]])
    if "speed" in only:
        s = cfg["speed"]

        def speed() -> dict:
            rows = [_progress(sections.speed(c, work, s["threads"], s["memory_limit"], s["cleartext"]))
                    for c in s["contacts"]]
            return {"rows": rows, "slopes": sections.slopes(rows)}

        run_section("speed", results, speed)
    if "privacy" in only:
        p = cfg["privacy"]
        run_section("privacy", results, lambda: sections.privacy(p["candidates"], p["people"], p["keys"], p["seed"],
                                                                 p["list_seed"], work))
    if "counts" in only:
        run_section("counts", results, lambda: sections.counts(cfg["counts"]["events"], work))
    results["load_after"] = _load()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return results


def _progress(row: dict) -> dict:
    """Print one line per finished data set or size, so a long run shows where it is."""
    label = row.get("data") or f"{row.get('contacts_target', 0):,} contacts"
    figures = {k: row[k]["pair_f1"] for k in ("simlink", "cleartext") if isinstance(row.get(k), dict)
               and "pair_f1" in row[k]}
    if "pair_f1" in row:
        figures["peers"] = row["pair_f1"]
    if "encoded" in row:
        figures["link s"] = sum(row["encoded"]["seconds"].values())
    print(f"  {label}: " + ", ".join(f"{k} {v:.4f}" if k != "link s" else f"{k} {v:.1f}" for k, v in figures.items())
          + f" (load {os.getloadavg()[0]:.1f})", flush=True)
    return row


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     epilog="Sizes per mode are in benchmarks/suite.py (MODES).")
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the plumbing, not the figures")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run these sections only")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for suite_<mode>.{json,md,png}")
    parser.add_argument("--work", type=Path, default=None,
                        help="working folder for data and linkages (default: a temporary folder, removed at the end)")
    parser.add_argument("--peers-python", default=None,
                        help="Python with clkhash and anonlink ('none' skips the peers); default: this Python, "
                             "$SIMLINK_PEERS_PYTHON, then /tmp/peers/bin/python")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else args.mode
    work = args.work or Path(tempfile.mkdtemp(prefix="simlink-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"simlink benchmark suite, {mode} mode; work folder {work}; load {_load()}", flush=True)
    try:
        results = run(mode, args.only, work, args.peers_python)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"suite_{mode}"
    if not args.no_plots:
        results["plots"] = [p.name for p in suite_report.plots(results, stem)]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    text = suite_report.markdown(results)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {stem}.json, {stem}.md ({results['wall_seconds']:.0f} s, load {results['load_before'][0]:.1f} -> "
          f"{results['load_after'][0]:.1f})")
    return stem


if __name__ == "__main__":
    main()
