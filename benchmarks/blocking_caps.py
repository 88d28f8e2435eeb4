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

from simlink.link.block_caps import FALLBACK_COLUMN, cap_blocks, largest_block, scoped_signatures  # noqa: E402
from simlink.link.load import _hash_sql, encoded_columns  # noqa: E402
from simlink.schema import load_schema  # noqa: E402


def parse_design(text: str, default_keys: list[str]) -> tuple[str, list[str], int | None, bool]:
    """``name=key,key@cap[!]`` -> (name, token columns, cap or None, fallback); a trailing ``!``
    turns the fallback rule (name bands and tiles, simlink/link/block_caps.py) off."""
    fallback = not text.endswith("!")
    text = text.rstrip("!")
    name, _, rest = text.partition("=")
    keys, _, cap = rest.partition("@")
    columns: list[str] = []
    for key in keys.split(","):
        columns += default_keys if key == "default" else [f"blk__{key.strip()}"]
    return name, list(dict.fromkeys(columns)), (int(cap) or None) if cap else None, fallback


def load_truth(con: duckdb.DuckDBPyConnection, folder: Path, schema_path: Path | None) -> list[str]:
    """Tables ``ev`` (events, all tokens), ``enc_all`` (distinct encodings), ``ep``/``tp``
    (true pairs of distinct encodings with their contact-pair weight); returns token columns."""
    schema = load_schema(schema_path)
    files = ", ".join(f"'{folder / a}.parquet'" for a in linkeval.AGENCIES)
    blk = [f"blk__{b.name}" for b in schema.blocking]
    for sig in scoped_signatures(schema):  # the name bands of the fallback read these words
        blk += [f"{sig.prefix}__w{i}" for i in range(sig.words)] + [f"{sig.prefix}__pop"]
    con.execute(f"""CREATE TABLE ev AS SELECT agency, record_id, {_hash_sql(encoded_columns(schema))} AS enc_id,
                    {', '.join(blk)} FROM read_parquet([{files}])""")
    con.execute(f"CREATE TABLE truth AS SELECT * FROM read_csv('{folder / 'truth.csv'}', types={{'person_id': 'VARCHAR', 'record_id': 'VARCHAR'}})")
    con.execute(f"CREATE TABLE enc_all AS SELECT DISTINCT ON (enc_id) enc_id, {', '.join(blk)} FROM ev")
    con.execute("""CREATE TABLE ep AS SELECT enc_id, person_id, count(*) AS n
                   FROM ev JOIN truth USING (agency, record_id) GROUP BY ALL""")
    con.execute("""CREATE TABLE tp AS SELECT a.enc_id AS l, b.enc_id AS r, sum(a.n * b.n) AS event_pairs
                   FROM ep a JOIN ep b ON a.person_id = b.person_id AND a.enc_id < b.enc_id GROUP BY ALL""")
    reference = folder / "linked_pairs.parquet"  # pairs a reference link run linked (keep_scored)
    con.execute(f"""CREATE TABLE lt AS SELECT DISTINCT least(enc_id_l, enc_id_r) AS l, greatest(enc_id_l, enc_id_r) AS r
                    FROM read_parquet('{reference}')""" if reference.exists() else "CREATE TABLE lt (l BIGINT, r BIGINT)")
    con.execute("DELETE FROM lt WHERE NOT EXISTS (SELECT 1 FROM tp WHERE tp.l = lt.l AND tp.r = lt.r)")
    return [c for c in blk if c.startswith("blk__")]


def reachable_contact_pairs(con: duckdb.DuckDBPyConnection) -> float:
    """Share of a person's contact pairs joined by a path of true candidate pairs (the most
    that clustering, which is transitive, can put together)."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = con.execute("SELECT DISTINCT enc_id FROM ep ORDER BY 1").fetchnumpy()["enc_id"]
    edges = con.execute("SELECT tp.l, tp.r FROM tp JOIN cand c USING (l, r)").fetchnumpy()
    left, right = np.searchsorted(ids, edges["l"]), np.searchsorted(ids, edges["r"])
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    con.execute("CREATE OR REPLACE TEMP TABLE comp AS SELECT * FROM (SELECT unnest($1) AS enc_id, unnest($2) AS c)",
                [ids.tolist(), component.tolist()])
    reached, total = con.execute("""
        WITH pc AS (SELECT person_id, c, sum(n) AS k FROM ep JOIN comp USING (enc_id) GROUP BY ALL),
             p AS (SELECT person_id, sum(k) AS k FROM pc GROUP BY ALL)
        SELECT (SELECT sum(k * (k - 1) / 2) FROM pc), (SELECT sum(k * (k - 1) / 2) FROM p)""").fetchall()[0]
    return float(reached) / float(total) if total else 1.0


def measure(con: duckdb.DuckDBPyConnection, name: str, cols: list[str], cap: int | None, fallback: bool = True,
            schema_path: Path | None = None) -> dict:
    """One design on the loaded tables (see the module docstring)."""
    signatures = [s for s in scoped_signatures(load_schema(schema_path)) if s.key_column in cols] if fallback else []
    words = [f"{s.prefix}__w{i}" for s in signatures for i in range(s.words)] + [f"{s.prefix}__pop" for s in signatures]
    con.execute(f"CREATE OR REPLACE TABLE enc AS SELECT enc_id, {', '.join(cols + words)} FROM enc_all")
    started = time.perf_counter()
    stats = cap_blocks(con, "enc", cap, signatures=signatures)
    if not fallback:
        con.execute(f"UPDATE enc SET {FALLBACK_COLUMN} = NULL")
    cap_seconds = time.perf_counter() - started
    same = con.execute("SELECT sum(n * (n - 1) / 2) FROM ep").fetchall()[0][0] or 0
    started = time.perf_counter()
    union = " UNION ".join([f"SELECT a.enc_id AS l, b.enc_id AS r FROM enc a JOIN enc b ON a.{c} = b.{c} AND a.enc_id < b.enc_id"
                            for c in cols] + [
        f"""SELECT a.enc_id AS l, b.enc_id AS r FROM (SELECT enc_id, unnest({FALLBACK_COLUMN}) AS t FROM enc) a
            JOIN (SELECT enc_id, unnest({FALLBACK_COLUMN}) AS t FROM enc) b ON a.t = b.t AND a.enc_id < b.enc_id"""])
    con.execute(f"CREATE OR REPLACE TABLE cand AS {union}")
    pairs = con.execute("SELECT count(*) FROM cand").fetchall()[0][0]
    pair_seconds = time.perf_counter() - started
    total, covered, ev_across, ev_kept = con.execute("""
        SELECT count(*), count(c.l), sum(event_pairs), sum(event_pairs) FILTER (WHERE c.l IS NOT NULL)
        FROM tp LEFT JOIN cand c USING (l, r)""").fetchall()[0]
    linked, linked_found = con.execute("SELECT count(*), count(c.l) FROM lt LEFT JOIN cand c USING (l, r)").fetchall()[0]
    per_key = {c[5:]: int(con.execute(f"SELECT coalesce(sum(b * (b - 1) / 2), 0) FROM (SELECT count(*) AS b FROM enc "
                                      f"WHERE {c} IS NOT NULL GROUP BY {c})").fetchall()[0][0]) for c in cols}
    events, n = con.execute("SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM enc)").fetchall()[0]
    return {"design": name, "keys": [c[5:] for c in cols], "cap": cap, "events": int(events), "distinct_encodings": int(n),
            "candidate_pairs": int(pairs), "pairs_per_encoding": pairs / n,
            "pair_completeness": covered / total if total else 1.0,
            "event_pair_completeness": (same + (ev_kept or 0)) / (same + (ev_across or 0)),
            "reachable_event_pair_completeness": reachable_contact_pairs(con),
            "reference_links_found": linked_found / linked if linked else None, "reference_links": int(linked),
            "fallback": fallback, "fallback_encodings": stats.fallback_encodings, "fallback_tokens": stats.fallback_tokens,
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
               else [(f"cap {c or 'none'}", all_cols, c or None, True) for c in args.caps])
    rows = []
    for name, cols, cap, fallback in designs:
        row = measure(con, name, cols, cap, fallback, args.schema)
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, (dict, list))}), flush=True)
    tag = args.tag or args.folder.name
    out = HERE / "results"
    (out / f"blocking_caps_{tag}.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Blocking designs on {rows[0]['events']:,} contacts ({rows[0]['distinct_encodings']:,} distinct encodings)", "",
             "Completeness: of true pairs of distinct encodings; of true contact pairs (a shared encoding counts as found); "
             "of true contact pairs joined by a path of found true pairs (what transitive clustering can reach); "
             "of the true pairs a reference `simlink link` run linked (when the folder has its linked_pairs.parquet).", "",
             "| design | keys | cap | fallback | candidate pairs | pairs / encoding | pair completeness (encodings) | contact-pair completeness | reachable contact pairs | reference links found | largest block | cap s | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = r.get("reference_links_found")
        lines.append(f"| {r['design']} | {' '.join(r['keys'])} | {r['cap'] or 'none'} | {'yes' if r.get('fallback') else 'no'} | "
                     f"{r['candidate_pairs']:,} | {r['pairs_per_encoding']:.1f} | "
                     f"{r['pair_completeness']:.5f} | {r['event_pair_completeness']:.5f} | "
                     f"{r.get('reachable_event_pair_completeness', float('nan')):.5f} | {'–' if ref is None else f'{ref:.5f}'} | {r['largest_block']:,} | "
                     f"{r['cap_seconds']:.1f} | {r['load']:.1f} |")
    linkeval.write_markdown(out / f"blocking_caps_{tag}.md", lines)


if __name__ == "__main__":
    main()
