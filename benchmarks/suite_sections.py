"""The suite's sections: each calls the existing benchmark scripts' functions and returns plain data.

Nothing here re-implements a measurement: quality is ``encoding_quality.run_candidate`` and
``baseline_cleartext.run``; speed is ``synth_bench.run``, ``encode_bench._run_child`` and
``link_bench.run_child`` (each a fresh process, so its peak RSS is its own); privacy is
``linkage_unit_attack.run_key``; disclosure control is ``counts_bench.bench``. What the
scripts learn, the suite reports. The peers run ``benchmarks/peers.py`` in their own Python.
Every section returns JSON-ready dicts; rendering is suite_report.py's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):  # the scripts import each other as top-level modules
    if path not in sys.path:
        sys.path.insert(0, path)

PEERS_INSTALL = "python -m venv /tmp/peers && /tmp/peers/bin/pip install clkhash anonlink"
HEADLINE = ("people", "people_2plus_services", "repeat_people")


# ---------------------------------------------------------------- quality

def _dated(assigned: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Persons (agency, record_id, person_key) with each contact's service and date."""
    frame = assigned.astype({"record_id": str, "agency": str}).merge(
        events[["agency", "record_id", "contact_date"]], on=["agency", "record_id"])
    frame["service"] = frame["agency"]
    dates = pd.to_datetime(frame["contact_date"].str.slice(0, 10), dayfirst=True, errors="coerce", format="mixed")
    return frame.assign(contact_date=dates.dt.date)


def headline_counts(assigned: pd.DataFrame, events: pd.DataFrame) -> dict[str, int]:
    """People, people in 2+ services, repeat-contact people of a set of persons (unprotected)."""
    from encoding_quality import headline
    from simlink.counts.measures import compute_measures

    return headline(compute_measures(_dated(assigned, events)))


def _scored(assigned: pd.DataFrame, truth: pd.DataFrame, events: pd.DataFrame, true_counts: dict) -> dict:
    from simlink.evaluate import evaluate_clusters

    q = evaluate_clusters(assigned.astype({"record_id": str}), truth)
    counts = headline_counts(assigned, events)
    return {"pair_precision": q.pair_precision, "pair_recall": q.pair_recall, "pair_f1": q.pair_f1,
            "bcubed_precision": q.bcubed_precision, "bcubed_recall": q.bcubed_recall, "bcubed_f1": q.bcubed_f1,
            "persons": q.predicted_persons, "true_persons": q.true_persons,
            "count_errors": {k: (counts[k] - true_counts[k]) / true_counts[k] if true_counts[k] else 0.0
                             for k in HEADLINE}}


def quality_data(name: str, work: Path, people: int, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """A data set in the input contract, its contacts, truth and true headline counts."""
    import quality_data as qd
    from encoding_quality import _events

    data = qd.dataset(name, work / f"quality-{people}-{seed}", people=people, seed=seed)
    events = _events(data)
    truth = pd.read_csv(data["truth"], dtype={"record_id": str, "agency": str, "person_id": str})
    true_counts = headline_counts(truth.rename(columns={"person_id": "person_key"}), events)
    return data, events, truth, true_counts


def quality(name: str, work: Path, people: int, seed: int, cleartext: bool) -> dict:
    """simlink (default schema, fresh key, default decision) and cleartext Splink on one data set."""
    import baseline_cleartext
    import encoding_quality
    import linkeval

    data, events, truth, true_counts = quality_data(name, work, people, seed)
    started = time.perf_counter()
    encoded = encoding_quality.run_candidate("default", None, data, work / f"quality-{people}-{seed}" / name,
                                             true_counts, events)
    encoded["seconds"] = time.perf_counter() - started
    row = {"data": name, "generator": data["generator"], "records": len(events), "true_counts": true_counts,
           "simlink": encoded}
    if cleartext:
        keep: dict = {}
        started = time.perf_counter()
        clear = baseline_cleartext.run(data["csv"], data["truth"], thresholds=(0.95,), keep=keep)
        assigned = linkeval.cluster_at(keep["scored"], keep["events"], 0.95, left="rec_id_l", right="rec_id_r",
                                       node="rec_id")
        row["cleartext"] = _scored(assigned, truth, events, true_counts) | {
            "threshold": 0.95, "seconds": time.perf_counter() - started, "phases": clear["seconds"],
            "blocked_pairs": clear["blocked_pairs"]}
    return row


# ---------------------------------------------------------------- peers

def find_peers_python(explicit: str | None) -> tuple[str | None, str]:
    """The first Python that imports clkhash and anonlink, and what was tried (for the report)."""
    candidates = [explicit] if explicit else [sys.executable, os.environ.get("SIMLINK_PEERS_PYTHON"),
                                              "/tmp/peers/bin/python"]
    tried = []
    for python in [c for c in candidates if c]:
        if explicit == "none":
            return None, "skipped on request (--peers-python none)"
        if not Path(python).exists():
            tried.append(f"{python}: not found")
            continue
        probe = subprocess.run([python, "-c", "import clkhash, anonlink"], capture_output=True, text=True)
        if probe.returncode == 0:
            return python, f"clkhash and anonlink imported by {python}"
        tried.append(f"{python}: {(probe.stderr.strip().splitlines() or ['import failed'])[-1]}")
    return None, "clkhash/anonlink not importable (" + "; ".join(tried) + f"); install them apart: {PEERS_INSTALL}"


def peers(name: str, work: Path, people: int, seed: int, python: str, thresholds: list[float],
          headline: float) -> dict:
    """clkhash + anonlink on the same CSVs, scored like simlink (benchmarks/peers.py)."""
    data, events, truth, true_counts = quality_data(name, work, people, seed)
    out = work / "peers" / name
    started = time.perf_counter()
    run = subprocess.run([python, str(HERE / "peers.py"), *map(str, data["csv"]), "--out", str(out),
                          "--thresholds", *map(str, thresholds)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"peers.py failed: {run.stderr.strip()[-500:]}")
    meta = json.loads((out / "peers.json").read_text())
    sweep = {}
    for threshold, file in meta["files"].items():
        assigned = pd.read_csv(out / file, dtype={"record_id": str, "agency": str})
        sweep[threshold] = _scored(assigned, truth, events, true_counts)
    return {"data": name, "threshold": headline, "method": meta["method"], "seconds": time.perf_counter() - started,
            "phases": meta["seconds"], "versions": {"clkhash": meta["clkhash"], "anonlink": meta["anonlink"],
                                                   "python": meta["python"]},
            "candidate_pairs": meta["candidate_pairs"], "fields": meta["fields"], "schema": meta["schema"],
            "sweep": sweep, **sweep[str(headline)]}


# ---------------------------------------------------------------- speed

COUNTS_CHILD = r"""
import json, sys, time
from benchmarks.rss import peak_rss_mb
from simlink.counts import release
started = time.perf_counter()
out = release(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "cells": out.meta["cells"],
                  "peak_rss_mb": peak_rss_mb()}))
"""


def _counts_child(db: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", COUNTS_CHILD, str(db)], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"counts child failed: {run.stderr.strip()[-500:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def speed(contacts: int, work: Path, threads: int, memory_limit: str, cleartext: bool) -> dict:
    """One size: synth, encode (each agency, one core), link (phases), counts; each its own process."""
    import encode_bench
    import link_bench
    import linkeval
    import synth_bench

    people = max(1, round(contacts / link_bench.CONTACTS_PER_PERSON))
    folder = work / f"speed-{contacts}"
    linkeval.prepare(folder, people, 1, "medium")  # the data the link runs use (cached, not timed)
    synth = synth_bench.run(people, work)
    encode = [encode_bench._run_child(folder / f"{a}.csv", work / f"encode-{a}.parquet", 200_000, "default")
              for a in linkeval.AGENCIES]
    row = {"contacts_target": contacts, "people": people, "synth": synth,
           "encode": {"seconds": sum(e["seconds"] for e in encode), "cpu_seconds": sum(e["cpu_seconds"] for e in encode),
                      "records": sum(e["rows"] for e in encode), "peak_rss_mb": max(e["peak_rss_mib"] for e in encode),
                      "note": "each agency in its own process pinned to one core"},
           "encoded": link_bench.run_child("encoded", folder, threads, memory_limit)}
    row["counts"] = _counts_child(folder / "bench.duckdb")
    if cleartext:
        row["cleartext"] = link_bench.run_child("cleartext", folder, threads, memory_limit)
    return row


def slopes(rows: list[dict]) -> dict[str, float]:
    """Log-log slopes against contacts: link_bench's (pairs, link time, RSS) plus encode and cleartext time."""
    import numpy as np

    import link_bench

    out = link_bench.fitted_slopes(rows, min_contacts=0)  # the suite fits every size it ran
    if len(rows) >= 2:
        x = np.log([r["encoded"]["events"] for r in rows])
        out["encode_seconds"] = float(np.polyfit(x, np.log([r["encode"]["seconds"] for r in rows]), 1)[0])
        if all("cleartext" in r for r in rows):
            total = [sum(r["cleartext"]["seconds"].values()) for r in rows]
            out["cleartext_seconds"] = float(np.polyfit(x, np.log(total), 1)[0])
    return out


# ---------------------------------------------------------------- privacy

def privacy(candidates: list[str], people: int, keys: int, seed: int, list_seed: int, work: Path) -> dict:
    """The audit's linkage-unit attacks on each candidate schema, against blind guess and random draw."""
    import encoding_quality
    import linkage_unit_attack as lua
    from simlink.audit.synthetic import reference_from_world
    from simlink.schema import load_schema

    target = lua.world(work / f"privacy-p{people}-s{seed}", people, seed)
    reference = reference_from_world(lua.world(work / f"privacy-p{people}-s{list_seed}", people, list_seed))
    schemas = encoding_quality.candidate_schemas(candidates)
    missing = sorted(set(candidates) - set(schemas))
    if missing:
        raise ValueError(f"unknown candidate(s): {', '.join(missing)}")
    out = {"people": people, "keys": keys, "seed": seed, "list_seed": list_seed,
           "fields": list(lua.FIELDS), "subsets": list(lua.SUBSETS), "candidates": {}}
    for name in candidates:
        schema = load_schema(schemas[name])
        started = time.perf_counter()
        rows = [lua.run_key(k, target, schema, reference) for k in range(keys)]
        out["candidates"][name] = {"schema": schema.name, "seconds": time.perf_counter() - started, "rows": rows}
    return out


# ---------------------------------------------------------------- disclosure control

def counts(sizes: list[int], work: Path) -> list[dict]:
    """counts_bench on random linkage databases: timings, suppression, and the second release
    checked against the first in the ledger."""
    import counts_bench

    folder = work / "counts"
    folder.mkdir(parents=True, exist_ok=True)
    return [counts_bench.bench(n, folder) for n in sizes]
