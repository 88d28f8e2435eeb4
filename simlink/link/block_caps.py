"""Cap the size of blocking blocks, so the number of candidate pairs cannot grow quadratically.

A blocking token shared by ``b`` distinct encodings makes ``b(b-1)/2`` candidate pairs, and
single-part tokens (a whole date of birth, a whole postcode) make blocks that grow with the
population. Here, at the linkage unit, a token value held by more than ``cap`` encodings is
removed from them, so each rule yields at most ``cap/2`` pairs per encoding.

The finer fallback for an oversized block is the AND of its token with another one; at the
linkage unit the only other tokens are the other OR-ed rules, and a pair equal on (X AND Y)
is already a candidate of rule Y. So the AND fallback adds no pair (measured: the same
completeness, benchmarks/blocking_caps.py) and removing the token is the same rule, said
plainly. A finer key that does add pairs has to be made where the identifiers are: as an
extra agency-side token that is not itself a rule (see docs/linkage.md).

Only token frequencies are used (no data value exists here), the columns keep their names
and rule ``l.blk__x = r.blk__x`` is unchanged, so a saved model and both backends block on
the capped tokens without knowing about the cap.
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
    dropped_encodings: dict[str, int] = field(default_factory=dict)


def token_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The blocking-token columns of ``table`` (``blk__*``), in table order."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0].startswith("blk__")]


def cap_blocks(con: duckdb.DuckDBPyConnection, table: str = "link_encodings",
               cap: int | None = DEFAULT_CAP) -> CapStats:
    """Rewrite ``table``'s ``blk__*`` columns in place so no token value is held by more than
    ``cap`` rows (see the module docstring). ``cap=None`` leaves the table as it is."""
    stats = CapStats(cap)
    if cap is None:
        return stats
    if cap < 2:
        raise ValueError("a block-size cap below 2 would block nothing")
    columns = token_columns(con, table)
    dropped = []
    for column in columns:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE cap_{column} AS SELECT {column} AS v FROM {table}
                        WHERE {column} IS NOT NULL GROUP BY 1 HAVING count(*) > {cap}""")
        big = con.execute(f"SELECT count(*) FROM cap_{column}").fetchall()[0][0]
        stats.oversized_values[column] = int(big)
        if big:
            stats.dropped_encodings[column] = int(con.execute(
                f"SELECT count(*) FROM {table} e SEMI JOIN cap_{column} b ON e.{column} = b.v").fetchall()[0][0])
            dropped.append(column)
        else:
            con.execute(f"DROP TABLE cap_{column}")
    if not dropped:
        return stats
    swaps = ", ".join(f"CASE WHEN {c} IN (SELECT v FROM cap_{c}) THEN NULL ELSE {c} END AS {c}" for c in dropped)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cap_new AS SELECT * REPLACE ({swaps}) FROM {table}")
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM cap_new")
    con.execute("DROP TABLE cap_new")
    for c in dropped:
        con.execute(f"DROP TABLE cap_{c}")
    return stats


def largest_block(con: duckdb.DuckDBPyConnection, table: str = "link_encodings") -> int:
    """Rows sharing the most common token value of any ``blk__*`` column (0 if none)."""
    sizes = [con.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {table} "
                         f"WHERE {c} IS NOT NULL GROUP BY {c})").fetchall()[0][0] for c in token_columns(con, table)]
    return int(max(sizes, default=0))
