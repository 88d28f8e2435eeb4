"""Blocked pairs of ``simlink link`` at a size, without scoring them (for sizes link cannot finish).

Loads only the blocking tokens of the distinct encodings of a prepared folder, applies the
default block-size cap exactly as link does, then counts each candidate pair under the first
rule it meets (as Splink does: no pair list, no dedupe hash). At 3M contacts this gives the
same count as ``link`` (89,594,186). Prints per-rule counts and writes
benchmarks/results/blocked_pairs_<folder>.json.

    python benchmarks/blocked_pairs_count.py /tmp/simlink-bench/speed-10000000 --temp-dir /work/tmp
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
sys.path.insert(0, str(HERE.parent))

from simlink.link.block_caps import DEFAULT_CAP, cap_blocks  # noqa: E402
from simlink.link.load import _hash_sql, encoded_columns  # noqa: E402
from simlink.schema import load_schema  # noqa: E402

AGENCIES = ("police", "ambulance", "ed", "mental_health")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--temp-dir", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    con = duckdb.connect()
    con.execute(f"SET threads={args.threads}")
    con.execute(f"SET memory_limit='{args.memory_limit}'")
    if args.temp_dir:
        con.execute(f"SET temp_directory='{args.temp_dir}'")
    con.execute("SET preserve_insertion_order=false")
    schema = load_schema(None)
    blk = [f"blk__{b.name}" for b in schema.blocking]
    files = ", ".join(f"'{args.folder / a}.parquet'" for a in AGENCIES)
    con.execute(f"""CREATE TABLE ev AS SELECT {_hash_sql(encoded_columns(schema))} AS enc_id, {', '.join(blk)}
                    FROM read_parquet([{files}])""")
    events = con.execute("SELECT count(*) FROM ev").fetchone()[0]
    con.execute("CREATE TABLE enc AS SELECT DISTINCT ON (enc_id) * FROM ev")
    con.execute("DROP TABLE ev")
    encodings = con.execute("SELECT count(*) FROM enc").fetchone()[0]
    stats = cap_blocks(con, "enc", args.cap)
    per_rule = {}
    for i, c in enumerate(blk):
        earlier = " OR ".join(f"coalesce(a.{e} = b.{e}, false)" for e in blk[:i]) or "false"
        per_rule[c] = int(con.execute(f"""SELECT count(*) FROM enc a JOIN enc b ON a.{c} = b.{c} AND a.enc_id < b.enc_id
                                          WHERE NOT ({earlier})""").fetchone()[0])
        print(c, per_rule[c], flush=True)
    out = {"folder": args.folder.name, "events": int(events), "distinct_encodings": int(encodings), "cap": args.cap,
           "blocked_pairs": sum(per_rule.values()), "pairs_first_found_by_rule": per_rule,
           "oversized_values": stats.oversized_values, "seconds": round(time.perf_counter() - started, 1),
           "load_before": load_before, "load_after": os.getloadavg()[0]}
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, dict)}))
    (HERE / "results" / f"blocked_pairs_{args.folder.name}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
