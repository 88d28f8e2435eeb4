"""The peers' pipeline: clkhash (CLK Bloom filters) + anonlink (Dice candidates, solving).

Runs in its own environment, because clkhash and anonlink pin old dependencies: it needs only
the standard library, clkhash and anonlink, never simlink. Install them apart:

    python -m venv /tmp/peers && /tmp/peers/bin/pip install clkhash anonlink

Reads agency CSVs in simlink's input contract (the same files simlink encodes), encodes
given name, family name, date of birth and postcode into one 1024-bit CLK per record with a
fresh random secret, finds candidate pairs by Dice similarity, and writes the persons it
found as ``agency,record_id,person_key`` CSV per threshold; the suite scores them against the
truth exactly as it scores simlink. With two files the persons are anonlink's greedy
one-to-one solution (its intended use); with one file or more than two (duplicates inside a
file) they are the connected components of the candidate pairs. The thresholds are fixed in
advance, never tuned on the truth.

    /tmp/peers/bin/python benchmarks/peers.py --out DIR a.csv b.csv [--thresholds 0.8 0.85]
"""

from __future__ import annotations

import argparse
import array
import csv
import json
import secrets
import sys
import time
from pathlib import Path

FIELDS = ("given_name", "family_name", "date_of_birth", "postcode")


def _feature(identifier: str, n: int, bits_per_token: int, positional: bool = False) -> dict:
    return {"identifier": identifier,
            "format": {"type": "string", "encoding": "utf-8", "case": "lower"},
            "hashing": {"comparison": {"type": "ngram", "n": n, "positional": positional},
                        "strategy": {"bitsPerToken": bits_per_token}, "hash": {"type": "blakeHash"},
                        "missingValue": {"sentinel": ""}}}


def linkage_schema() -> dict:
    """A clkhash v3 schema over the four identifiers simlink's default schema also links on."""
    return {"version": 3,
            "clkConfig": {"l": 1024, "kdf": {"type": "HKDF", "hash": "SHA256", "keySize": 64}},
            "features": [{"identifier": "record_id", "ignored": True},
                         _feature("given_name", 2, 20), _feature("family_name", 2, 20),
                         _feature("date_of_birth", 1, 12, positional=True),
                         _feature("postcode", 1, 12, positional=True)]}


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [[row["record_id"], *((row.get(f) or "").strip().lower() for f in FIELDS)] for row in reader]
    return [r[0] for r in rows], rows


def _take(values, index: list[int]):
    """The entries ``index`` of one of anonlink's typed arrays, as the same type."""
    return array.array(values.typecode, (values[i] for i in index))


def components(n: int, left: list[int], right: list[int]) -> list[int]:
    """Union-find labels of ``n`` nodes joined by the edges (left[i], right[i])."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left, right):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="+", help="agency CSVs; the agency is the file's stem")
    parser.add_argument("--out", type=Path, required=True, help="folder for persons_<threshold>.csv and peers.json")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.75, 0.8, 0.85, 0.9])
    args = parser.parse_args()
    import anonlink
    import clkhash
    from clkhash import clk
    from clkhash.schema import from_json_dict

    args.out.mkdir(parents=True, exist_ok=True)
    schema = from_json_dict(linkage_schema())
    secret = secrets.token_hex(32)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    datasets, ids = [], []
    for path in args.csv:
        record_ids, rows = read_rows(path)
        datasets.append(clk.generate_clks(rows, schema, secret, validate=False, max_workers=1))
        ids.append([(path.stem, r) for r in record_ids])
    seconds["encode"] = time.perf_counter() - started
    flat = [key for part in ids for key in part]
    offset = [0]
    for part in ids:
        offset.append(offset[-1] + len(part))
    started = time.perf_counter()
    lowest = min(args.thresholds)
    if len(datasets) == 2:
        sims, (dset_l, dset_r), (rec_l, rec_r) = anonlink.candidate_generation.find_candidate_pairs(
            datasets, anonlink.similarities.dice_coefficient_accelerated, lowest)
        method = "anonlink greedy_solve (two files, one-to-one)"
    else:  # duplicates inside a file: one concatenated set against itself, components of the pairs
        everything = [c for part in datasets for c in part]
        sims, (dset_l, dset_r), (rec_l, rec_r) = anonlink.candidate_generation.find_candidate_pairs(
            [everything, everything], anonlink.similarities.dice_coefficient_accelerated, lowest)
        method = "anonlink candidate pairs, connected components (duplicates inside files)"
    seconds["candidates"] = time.perf_counter() - started
    started = time.perf_counter()
    out = {"method": method, "clkhash": clkhash.__version__, "anonlink": anonlink.__version__,
           "python": sys.version.split()[0], "fields": list(FIELDS), "schema": linkage_schema(),
           "records": len(flat), "candidate_pairs": len(sims), "files": {}}
    for threshold in args.thresholds:
        keep = [i for i, s in enumerate(sims) if s >= threshold]
        if len(datasets) == 2:
            sub = (_take(sims, keep), (_take(dset_l, keep), _take(dset_r, keep)),
                   (_take(rec_l, keep), _take(rec_r, keep)))
            label = list(range(len(flat)))
            for group in anonlink.solving.greedy_solve(sub):
                nodes = [offset[d] + r for d, r in group]
                for node in nodes:
                    label[node] = min(nodes)
        else:
            pairs = [(rec_l[i], rec_r[i]) for i in keep if rec_l[i] < rec_r[i]]
            label = components(len(flat), [a for a, _ in pairs], [b for _, b in pairs])
        path = args.out / f"persons_{threshold}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["agency", "record_id", "person_key"])
            writer.writerows((agency, record, label[i]) for i, (agency, record) in enumerate(flat))
        out["files"][str(threshold)] = path.name
    seconds["solve"] = time.perf_counter() - started
    out["seconds"] = seconds
    (args.out / "peers.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps({k: out[k] for k in ("method", "records", "candidate_pairs", "seconds")}))


if __name__ == "__main__":
    main()
