"""Cap the size of blocking blocks, so the number of candidate pairs cannot grow quadratically.

A blocking token shared by ``b`` distinct encodings makes ``b(b-1)/2`` candidate pairs, and
single-part tokens (a whole date of birth, a whole postcode) make blocks that grow with the
population. Here, at the linkage unit, every token value held by more than ``cap``
encodings is replaced by a finer token: the keyed hash of (token, partner token), i.e. the
AND of two blocking keys. The partner of each ``blk__*`` column is the other token column
that keeps the most of those encodings in blocks within the cap. Encodings whose finer
block is still too big, or whose partner token is missing, lose that token (the other
OR-ed rules still reach them). So every block holds at most ``cap`` encodings and the pairs
are at most ``cap/2`` per encoding per rule.

At the linkage unit the only finer keys are the other rules' tokens, and a pair equal on
(X AND Y) is already a candidate of rule Y unless Y's own block was over the cap too; so the
fallback keeps pairs only inside blocks that are oversized on both tokens. A finer key that
adds more has to be made where the identifiers are, as another rule (a compound with sex,
say): measured on format 2 (benchmarks/blocking_caps.py, docs/linkage.md), such fallbacks
move the pairs/completeness frontier only a little, and a fixed cap keeps the pairs per
encoding bounded while completeness falls as more blocks pass it (at cap 100: 0.9936 at 1M
contacts, 0.9882 at 3M).

Only token frequencies are used (no data value exists here), the columns keep their names
and rule ``l.blk__x = r.blk__x`` is unchanged, so a saved model, the DuckDB and the Spark
backends all block on the capped tokens without knowing about the cap. Comparisons that are
scoped by a token read its uncapped ``sc__`` copy (simlink/link/load.py), never ``blk__``.
A finer value cannot meet an ordinary one by accident except through a 64-bit hash collision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

# Chosen by benchmarks/blocking_caps.py (docs/linkage.md): pair completeness against pairs.
DEFAULT_CAP = 100


@dataclass
class CapStats:
    """What the cap did, per token column (for link_stats and the benchmark)."""

    cap: int | None
    oversized_values: dict[str, int] = field(default_factory=dict)
    refined_encodings: dict[str, int] = field(default_factory=dict)
    dropped_encodings: dict[str, int] = field(default_factory=dict)
    partner: dict[str, str] = field(default_factory=dict)


def token_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The blocking-token columns of ``table`` (``blk__*``), in table order."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0].startswith("blk__")]


def _choose_partner(con: duckdb.DuckDBPyConnection, table: str, column: str, others: list[str],
                    cap: int) -> str | None:
    """The partner keeping most oversized-block encodings in blocks within the cap."""
    best, best_score = None, (-1, 0)
    for other in others:
        kept, pairs = con.execute(f"""
            WITH r AS (SELECT count(*) AS n FROM {table} e SEMI JOIN cap_big b ON e.{column} = b.v
                       WHERE e.{other} IS NOT NULL GROUP BY e.{column}, e.{other})
            SELECT coalesce(sum(n) FILTER (WHERE n <= {cap}), 0),
                   coalesce(sum(n * (n - 1) / 2) FILTER (WHERE n <= {cap}), 0) FROM r""").fetchall()[0]
        score = (int(kept), -int(pairs))
        if score > best_score:
            best, best_score = other, score
    return best


def cap_blocks(con: duckdb.DuckDBPyConnection, table: str = "link_encodings", cap: int | None = DEFAULT_CAP,
               id_column: str = "enc_id") -> CapStats:
    """Rewrite ``table``'s ``blk__*`` columns in place so no token value is held by more than
    ``cap`` rows (see the module docstring). ``cap=None`` leaves the table as it is."""
    stats = CapStats(cap)
    if cap is None:
        return stats
    if cap < 2:
        raise ValueError("a block-size cap below 2 would block nothing")
    columns = token_columns(con, table)
    replaced: list[str] = []
    for column in columns:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE cap_big AS SELECT {column} AS v FROM {table}
                        WHERE {column} IS NOT NULL GROUP BY 1 HAVING count(*) > {cap}""")
        big = con.execute("SELECT count(*) FROM cap_big").fetchall()[0][0]
        stats.oversized_values[column] = int(big)
        if not big:
            continue
        partner = _choose_partner(con, table, column, [c for c in columns if c != column], cap)
        finer = "NULL" if partner is None else f"CAST(hash(e.{column}, e.{partner}) >> 1 AS BIGINT)"
        partner_missing = "TRUE" if partner is None else f"e.{partner} IS NULL"
        stats.partner[column] = partner or ""
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE cap_{column} AS
            WITH f AS (SELECT e.{id_column} AS id, CASE WHEN {partner_missing} THEN NULL ELSE {finer} END AS t
                       FROM {table} e SEMI JOIN cap_big b ON e.{column} = b.v)
            SELECT id, CASE WHEN count(*) OVER (PARTITION BY t) <= {cap} THEN t END AS t FROM f""")
        refined, dropped = con.execute(
            f"SELECT count(t), count(*) - count(t) FROM cap_{column}").fetchall()[0]
        stats.refined_encodings[column], stats.dropped_encodings[column] = int(refined), int(dropped)
        replaced.append(column)
    con.execute("DROP TABLE IF EXISTS cap_big")
    if not replaced:
        return stats
    joins = " ".join(f"LEFT JOIN cap_{c} ON cap_{c}.id = e.{id_column}" for c in replaced)
    swaps = ", ".join(f"CASE WHEN cap_{c}.id IS NULL THEN e.{c} ELSE cap_{c}.t END AS {c}" for c in replaced)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cap_new AS SELECT e.* REPLACE ({swaps}) FROM {table} e {joins}")
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM cap_new")
    con.execute("DROP TABLE cap_new")
    for c in replaced:
        con.execute(f"DROP TABLE cap_{c}")
    return stats


def largest_block(con: duckdb.DuckDBPyConnection, table: str = "link_encodings") -> int:
    """Rows sharing the most common token value of any ``blk__*`` column (0 if none)."""
    sizes = [con.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {table} "
                         f"WHERE {c} IS NOT NULL GROUP BY {c})").fetchall()[0][0] for c in token_columns(con, table)]
    return int(max(sizes, default=0))
