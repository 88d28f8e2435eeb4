"""Shared helpers for the linkage benchmarks: data preparation and evaluation against truth.

Pairwise precision/recall/F1 come from contingency counts (pairs within predicted persons,
within true persons, within both), so no pair list is ever built. Pair completeness is
measured on distinct encodings, which is what blocking sees.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simlink.agency.encode import encode_file  # noqa: E402
from simlink.agency.keys import generate_key_file, read_key_file  # noqa: E402
from simlink.link.load import _hash_sql, encoded_columns  # noqa: E402
from simlink.schema import load_schema  # noqa: E402

AGENCIES = ("police", "ambulance", "ed", "mental_health")


def prepare(folder: Path, people: int, seed: int, errors: str) -> dict:
    """Generate (``simlink synth``) and encode a data set once (cached in ``folder``)."""
    from simlink.synth import SynthConfig, write_synth

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "encoded.ok"
    key = folder / "key.hex"
    fingerprint = load_schema(None).fingerprint  # re-encode when the default schema changes
    if not done.exists() or done.read_text().split()[-1] != fingerprint:
        started = time.perf_counter()
        write_synth(SynthConfig(people=people, seed=seed, errors=errors), folder, overwrite=True)
        if not key.exists():
            generate_key_file(key)
        secret, schema = read_key_file(key), load_schema(None)
        for agency in AGENCIES:
            encode_file(folder / f"{agency}.csv", folder / f"{agency}.parquet", secret=secret,
                        agency=agency, schema=schema, overwrite=True)
        done.write_text(f"{time.perf_counter() - started:.1f} {fingerprint}\n")
    return {"csv": [folder / f"{a}.csv" for a in AGENCIES],
            "encoded": [folder / f"{a}.parquet" for a in AGENCIES],
            "truth": folder / "truth.csv", "generator": "simlink.synth"}


def quality_data_from_args(description: str) -> tuple[argparse.Namespace, Path, dict]:
    """The shared command line of the 20k-people quality benchmarks, and their prepared data."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", default="medium")
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-bench"))
    args = parser.parse_args()
    folder = args.work / f"q-{args.people}-{args.seed}-{args.errors}"
    return args, folder, prepare(folder, args.people, args.seed, args.errors)


def write_markdown(path: Path, lines: list[str]) -> None:
    """Write a results table and print it."""
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def pairs(sizes: pd.Series | np.ndarray) -> int:
    s = np.asarray(sizes, dtype=np.int64)
    return int((s * (s - 1) // 2).sum())


def pairwise_quality(assigned: pd.DataFrame, truth: pd.DataFrame, cluster: str = "person_key") -> dict:
    """Precision, recall, F1 over event pairs; ``assigned`` has agency, record_id, <cluster>."""
    merged = assigned.merge(truth, on=["agency", "record_id"], how="inner")
    if len(merged) != len(truth):
        raise AssertionError("assignment does not cover every true event")
    tp = pairs(merged.groupby([cluster, "person_id"]).size())
    predicted = pairs(merged.groupby(cluster).size())
    actual = pairs(merged.groupby("person_id").size())
    p = tp / predicted if predicted else 1.0
    r = tp / actual if actual else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "true_pairs": actual, "predicted_pairs": predicted}


def cluster_at(scored: pd.DataFrame, events: pd.DataFrame, threshold: float,
               left: str = "enc_id_l", right: str = "enc_id_r", node: str = "enc_id") -> pd.DataFrame:
    """Connected components of pairs at or above ``threshold``, expanded to events."""
    nodes = pd.Index(events[node].unique())
    keep = scored[scored["match_probability"] >= threshold]
    a, b = nodes.get_indexer(keep[left]), nodes.get_indexer(keep[right])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    mapping = pd.Series(labels, index=nodes)
    return events.assign(person_key=mapping.loc[events[node]].to_numpy())[["agency", "record_id", "person_key"]]


def blocking_quality(encoded: list[Path], truth_path: Path, schema_blocking: list[str]) -> dict:
    """Pair completeness of the OR-ed blocking rules on distinct encodings, per rule too."""
    schema = load_schema(None)
    cols = encoded_columns(schema)
    con = duckdb.connect()
    files = ", ".join(f"'{p}'" for p in encoded)
    blk = ", ".join(f"blk__{b}" for b in schema_blocking)
    con.execute(f"CREATE TABLE ev AS SELECT agency, record_id, {_hash_sql(cols)} AS enc_id, {blk} FROM read_parquet([{files}])")
    con.execute(f"CREATE TABLE truth AS SELECT * FROM read_csv('{truth_path}', types={{'person_id': 'VARCHAR'}})")
    con.execute("""CREATE TABLE ep AS SELECT enc_id, person_id, count(*) AS n
                   FROM ev JOIN truth USING (agency, record_id) GROUP BY ALL""")
    con.execute("""CREATE TABLE tp AS SELECT a.enc_id AS l, b.enc_id AS r, sum(a.n * b.n) AS event_pairs
                   FROM ep a JOIN ep b ON a.person_id = b.person_id AND a.enc_id < b.enc_id GROUP BY ALL""")
    con.execute(f"CREATE TABLE enc AS SELECT DISTINCT ON (enc_id) enc_id, {blk} FROM ev")
    per_rule = ", ".join(f"count(*) FILTER (WHERE x.blk__{b} = y.blk__{b})" for b in schema_blocking)
    any_rule = " OR ".join(f"coalesce(x.blk__{b} = y.blk__{b}, false)" for b in schema_blocking)
    row = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE {any_rule}), {per_rule}
                          FROM tp JOIN enc x ON x.enc_id = tp.l JOIN enc y ON y.enc_id = tp.r""").fetchall()[0]
    # event level: pairs of contacts with identical encodings are always kept (collapsed)
    same, across, across_kept = con.execute(f"""SELECT (SELECT sum(n * (n - 1) / 2) FROM ep),
        sum(event_pairs), sum(event_pairs) FILTER (WHERE {any_rule})
        FROM tp JOIN enc x ON x.enc_id = tp.l JOIN enc y ON y.enc_id = tp.r""").fetchall()[0]
    same, across, across_kept = int(same or 0), int(across or 0), int(across_kept or 0)
    n = con.execute("SELECT count(*) FROM enc").fetchall()[0][0]
    con.close()
    total, covered = row[0], row[1]
    return {"true_pairs_distinct_encodings": total, "covered": covered,
            "pair_completeness": covered / total if total else 1.0, "distinct_encodings": n,
            "event_pair_completeness": (same + across_kept) / (same + across) if same + across else 1.0,
            "per_rule_completeness": {b: (v / total if total else 1.0) for b, v in zip(schema_blocking, row[2:])}}


def reduction_ratio(blocked_pairs: int, distinct_encodings: int) -> float:
    return 1.0 - blocked_pairs / (distinct_encodings * (distinct_encodings - 1) / 2)
