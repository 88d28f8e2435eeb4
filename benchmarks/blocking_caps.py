"""Blocking designs (key sets x block-size caps): candidate pairs against pair completeness.

A design is a set of ``blk__*`` token columns OR-ed at linkage plus a block-size cap
(simlink/link/block_caps.py). For each design, the distinct encodings of a prepared data set
get their tokens capped exactly as ``simlink link`` does, then: candidate pairs (the OR of
the equality rules, each pair once), pair completeness on distinct encodings and on contacts
(pairs of contacts of one person that share an encoding count as found), largest block,
seconds. The data and the truth are loaded once; every design is measured on the same rows.
Writes benchmarks/results/blocking_caps_<tag>.json and .md.

    python benchmarks/blocking_caps.py --folder /tmp/simlink-bench/speed-1000000 --caps 0 500 200 100 50
    python benchmarks/blocking_caps.py --folder F --schema S.toml \\
        --design "default=dob,postcode,full_name@100" --design "fine=dob_sex,postcode@100"

``--design NAME=KEY,KEY,...[@CAP]`` names keys without the ``blk__`` prefix; ``default``
stands for the keys of the default schema. Without ``--design``, ``--caps`` tries the keys of
the schema at each cap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import linkeval  # noqa: E402

from simlink.link.block_caps import cap_blocks, largest_block  # noqa: E402
from simlink.link.load import _hash_sql, encoded_columns  # noqa: E402
from simlink.schema import load_schema  # noqa: E402


def parse_design(text: str, default_keys: list[str]) -> tuple[str, list[str], int | None]:
    """``name=key,key@cap`` -> (name, token columns, cap or None)."""
    name, _, rest = text.partition("=")
    keys, _, cap = rest.partition("@")
    columns: list[str] = []
    for key in keys.split(","):
        columns += default_keys if key == "default" else [f"blk__{key.strip()}"]
    return name, list(dict.fromkeys(columns)), (int(cap) or None) if cap else None


def load_truth(con: duckdb.DuckDBPyConnection, folder: Path, schema_path: Path | None) -> list[str]:
    """Tables ``ev`` (events, all tokens), ``enc_all`` (distinct encodings), ``ep``/``tp``
    (true pairs of distinct encodings with their contact-pair weight); returns token columns."""
    schema = load_schema(schema_path)
    files = ", ".join(f"'{folder / a}.parquet'" for a in linkeval.AGENCIES)
    blk = [f"blk__{b.name}" for b in schema.blocking]
    con.execute(f"""CREATE TABLE ev AS SELECT agency, record_id, {_hash_sql(encoded_columns(schema))} AS enc_id,
                    {', '.join(blk)} FROM read_parquet([{files}])""")
    con.execute(f"CREATE TABLE truth AS SELECT * FROM read_csv('{folder / 'truth.csv'}', types={{'person_id': 'VARCHAR', 'record_id': 'VARCHAR'}})")
    con.execute(f"CREATE TABLE enc_all AS SELECT DISTINCT ON (enc_id) enc_id, {', '.join(blk)} FROM ev")
    con.execute("""CREATE TABLE ep AS SELECT enc_id, person_id, count(*) AS n
                   FROM ev JOIN truth USING (agency, record_id) GROUP BY ALL""")
    con.execute("""CREATE TABLE tp AS SELECT a.enc_id AS l, b.enc_id AS r, sum(a.n * b.n) AS event_pairs
                   FROM ep a JOIN ep b ON a.person_id = b.person_id AND a.enc_id < b.enc_id GROUP BY ALL""")
    return blk


def measure(con: duckdb.DuckDBPyConnection, name: str, cols: list[str], cap: int | None) -> dict:
    """One design on the loaded tables (see the module docstring)."""
    con.execute(f"CREATE OR REPLACE TABLE enc AS SELECT enc_id, {', '.join(cols)} FROM enc_all")
    started = time.perf_counter()
    stats = cap_blocks(con, "enc", cap)
    cap_seconds = time.perf_counter() - started
    any_rule = " OR ".join(f"coalesce(x.{c} = y.{c}, false)" for c in cols)
    total, covered, ev_across, ev_kept = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE {any_rule}), sum(event_pairs), sum(event_pairs) FILTER (WHERE {any_rule})
        FROM tp JOIN enc x ON x.enc_id = tp.l JOIN enc y ON y.enc_id = tp.r""").fetchall()[0]
    same = con.execute("SELECT sum(n * (n - 1) / 2) FROM ep").fetchall()[0][0] or 0
    started = time.perf_counter()
    union = " UNION ".join(f"SELECT a.enc_id AS l, b.enc_id AS r FROM enc a JOIN enc b ON a.{c} = b.{c} AND a.enc_id < b.enc_id"
                           for c in cols)
    pairs = con.execute(f"SELECT count(*) FROM ({union})").fetchall()[0][0]
    pair_seconds = time.perf_counter() - started
    per_key = {c[5:]: int(con.execute(f"SELECT coalesce(sum(b * (b - 1) / 2), 0) FROM (SELECT count(*) AS b FROM enc "
                                      f"WHERE {c} IS NOT NULL GROUP BY {c})").fetchall()[0][0]) for c in cols}
    events, n = con.execute("SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM enc)").fetchall()[0]
    return {"design": name, "keys": [c[5:] for c in cols], "cap": cap, "events": int(events), "distinct_encodings": int(n),
            "candidate_pairs": int(pairs), "pairs_per_encoding": pairs / n,
            "pair_completeness": covered / total if total else 1.0,
            "event_pair_completeness": (same + (ev_kept or 0)) / (same + (ev_across or 0)),
            "largest_block": largest_block(con, "enc"), "cap_seconds": cap_seconds, "pair_count_seconds": pair_seconds,
            "pairs_per_key": per_key, "oversized_values": stats.oversized_values,
            "dropped_encodings": stats.dropped_encodings, "partner": stats.partner}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--schema", type=Path, default=None, help="schema the folder was encoded with (default: the default)")
    parser.add_argument("--caps", type=int, nargs="+", default=[0, 500, 200, 100, 50], help="0: no cap")
    parser.add_argument("--design", action="append", default=[], help="NAME=KEY,KEY,...[@CAP] (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads={args.threads}")
    all_cols = load_truth(con, args.folder, args.schema)
    default_keys = [f"blk__{b.name}" for b in load_schema(None).blocking]
    designs = ([parse_design(d, default_keys) for d in args.design] if args.design
               else [(f"cap {c or 'none'}", all_cols, c or None) for c in args.caps])
    rows = []
    for name, cols, cap in designs:
        row = measure(con, name, cols, cap)
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, (dict, list))}), flush=True)
    tag = args.tag or args.folder.name
    out = HERE / "results"
    (out / f"blocking_caps_{tag}.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Blocking designs on {rows[0]['events']:,} contacts ({rows[0]['distinct_encodings']:,} distinct encodings)", "",
             "| design | keys | cap | candidate pairs | pairs / encoding | pair completeness (encodings) | contact-pair completeness | largest block | cap s | load |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['design']} | {' '.join(r['keys'])} | {r['cap'] or 'none'} | {r['candidate_pairs']:,} | {r['pairs_per_encoding']:.1f} | "
                     f"{r['pair_completeness']:.5f} | {r['event_pair_completeness']:.5f} | {r['largest_block']:,} | "
                     f"{r['cap_seconds']:.1f} | {r['load']:.1f} |")
    linkeval.write_markdown(out / f"blocking_caps_{tag}.md", lines)


if __name__ == "__main__":
    main()
