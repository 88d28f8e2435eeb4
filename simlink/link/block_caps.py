"""Cap the size of blocking blocks, so candidate pairs grow with the data, not its square.

A blocking token shared by ``b`` distinct encodings makes ``b(b-1)/2`` candidate pairs, and
single-part tokens (a whole date of birth, a whole postcode) make blocks that grow with the
population. Here, at the linkage unit, every token value held by more than ``cap``
encodings is taken apart, in three steps:

1. **Partner.** The token is replaced by the keyed hash of (token, partner token), the AND of
   two keys. A pair equal on (X AND Y) is a candidate of rule Y anyway unless its Y block is
   over the cap too, so the partner is the key that keeps most encodings oversized on *both*
   in finer blocks within the cap (a nearly unique partner, such as a whole name, would keep
   the most encodings and add no pair).
2. **Name bands.** Inside an oversized block of a key that scopes MinHash copies of names
   (date of birth, postcode), each encoding gets one token per band of 4 segments of each such
   copy: two encodings in the block share one when their names agree on a whole band. Equal
   names always do, a name with a typo usually does, unrelated names rarely do, so the pairs
   kept are the ones the model could link.
3. **Tiles.** A group still over the cap (a finer block, a band, a block without a partner)
   is not dropped: in the order of its rows' tokens it is cut into overlapping tiles of
   ``cap // 2`` rows, each row in two tiles. The pairs form a chain that keeps the group
   connected, with at most ``cap`` partners per row. The many distinct encodings of one
   frequent contacter can fill a block on their own; dropping them (simlink 0.3) cut exactly
   the people the counts are about out of their own cluster.

Steps 2 and 3 give each encoding a list, ``fallback_tokens``, which one more blocking rule
explodes (``block_on(..., arrays_to_explode=...)``, on DuckDB and Spark alike). Tokens held by
one row make no pair and are left out. Everything here is computed from what the linkage
unit already holds (tokens and filter words), so it reveals nothing new to it; none of it is
written to the linkage database. The ``blk__*`` columns keep their names and rule
``l.blk__x = r.blk__x`` is unchanged, so a saved model blocks on the capped tokens without
knowing about the cap. Comparisons scoped by a token read its uncapped ``sc__`` copy
(simlink/link/load.py), never ``blk__``. A finer value cannot meet an ordinary one by
accident except through a 64-bit hash collision.

The cap, 24, was chosen by benchmarks/cap_quality.py, blocking_caps.py and link_bench.py
(docs/linkage.md): at 1M contacts it scores 3.8M pairs instead of 13.9M (cap 100) at the same
F1; at every size measured (1,500 people to 10M contacts) its F1 is within 0.001 of caps 32 and 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from simlink.defaults import DEFAULT_BLOCK_CAP

# Chosen by benchmarks/cap_quality.py and blocking_caps.py (docs/linkage.md).
DEFAULT_CAP = DEFAULT_BLOCK_CAP


@dataclass
class CapStats:
    """What the cap did, per token column (for link_stats and the benchmark)."""

    cap: int | None
    oversized_values: dict[str, int] = field(default_factory=dict)
    refined_encodings: dict[str, int] = field(default_factory=dict)
    dropped_encodings: dict[str, int] = field(default_factory=dict)
    partner: dict[str, str] = field(default_factory=dict)
    fallback_encodings: int = 0
    fallback_tokens: int = 0


def token_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The blocking-token columns of ``table`` (``blk__*``), in table order."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0].startswith("blk__")]


def _choose_partner(con: duckdb.DuckDBPyConnection, table: str, column: str, others: list[str],
                    cap: int) -> str | None:
    """The partner whose AND with ``column`` keeps the most pairs that no rule keeps already.

    A pair equal on (X AND Y) is a candidate of rule Y anyway unless its Y block is over the cap
    too, so only encodings oversized on both count: choosing by all encodings kept would pick a
    nearly unique partner (a whole name), whose pairs its own rule finds, and add nothing.
    """
    best, best_score = None, (0, 0)
    for other in others:
        kept, pairs = con.execute(f"""
            WITH r AS (SELECT count(*) AS n FROM {table} e SEMI JOIN cap_big_{column} b ON e.{column} = b.v
                       SEMI JOIN cap_big_{other} o ON e.{other} = o.v GROUP BY e.{column}, e.{other})
            SELECT coalesce(sum(n) FILTER (WHERE n <= {cap} AND n > 1), 0),
                   coalesce(sum(n * (n - 1) / 2) FILTER (WHERE n <= {cap}), 0) FROM r""").fetchall()[0]
        score = (int(kept), -int(pairs))
        if score > best_score:
            best, best_score = other, score
    return best


FALLBACK_COLUMN = "fallback_tokens"
# Bands of 4 one-hot MinHash segments (32 bits of a filter word): equal for equal names, for a
# name with one typo about 1 time in 5 per band, for two unrelated names about 1 in 1,200.
BAND_SEGMENTS = 4


@dataclass(frozen=True)
class ScopedSignature:
    """A MinHash copy salted by a blocking key: its words can be compared between encodings
    that share that key's token, so bands of it are candidates' evidence inside the block."""

    key_column: str  # blk__<key> (its token scopes the copy)
    prefix: str      # <field>__by_<key>
    words: int


def scoped_signatures(schema) -> list[ScopedSignature]:
    """The MinHash copies of ``schema`` scoped by a blocking key, in schema order (those stored
    one segment per byte, which the bands read)."""
    fields = {f.name: f for f in schema.fields}
    return [ScopedSignature(f"blk__{c.scope}", c.prefix, c.words) for c in schema.copies
            if c.scope and fields[c.field].encoding == "minhash" and fields[c.field].bits == 8 * fields[c.field].segments]


def _band_tokens(sig: ScopedSignature, index: int, scope_sql: str) -> list[str]:
    """SQL for the band tokens of one signature, one expression per band: the hash of (scope
    token, signature, band, band bits), so bands of different signatures never meet."""
    per_word = 8 // BAND_SEGMENTS
    width = 8 * BAND_SEGMENTS
    mask = (1 << width) - 1
    return [f"CASE WHEN {sig.prefix}__pop > 0 THEN CAST(hash({scope_sql}, {index}, {w * per_word + j}, "
            f"({sig.prefix}__w{w} >> {width * j}) & {mask}) >> 1 AS BIGINT) END"
            for w in range(sig.words) for j in range(per_word)]


def cap_blocks(con: duckdb.DuckDBPyConnection, table: str = "link_encodings", cap: int | None = DEFAULT_CAP,
               id_column: str = "enc_id", signatures: list[ScopedSignature] | None = None) -> CapStats:
    """Rewrite ``table``'s ``blk__*`` columns in place so no token value is held by more than
    ``cap`` rows, and add ``fallback_tokens`` (a list per row, exploded by one more blocking
    rule) for what the cap takes out (see the module docstring). ``cap=None`` leaves the
    tokens as they are (the fallback column is then empty)."""
    stats = CapStats(cap)
    if cap is not None and cap < 2:
        raise ValueError("a block-size cap below 2 would block nothing")
    con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {FALLBACK_COLUMN} BIGINT[]")
    if cap is None:
        return stats
    columns = token_columns(con, table)
    by_scope = {sig.key_column: [] for sig in signatures or []}
    for i, sig in enumerate(signatures or []):
        by_scope[sig.key_column].append((i, sig))
    replaced: list[str] = []
    fallback_parts: list[str] = []
    for column in columns:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE cap_big_{column} AS SELECT {column} AS v FROM {table}
                        WHERE {column} IS NOT NULL GROUP BY 1 HAVING count(*) > {cap}""")
    for column in columns:
        big = con.execute(f"SELECT count(*) FROM cap_big_{column}").fetchall()[0][0]
        stats.oversized_values[column] = int(big)
        if not big:
            continue
        partner = _choose_partner(con, table, column, [c for c in columns if c != column], cap)
        finer = "NULL" if partner is None else f"CAST(hash(e.{column}, e.{partner}) >> 1 AS BIGINT)"
        partner_missing = "TRUE" if partner is None else f"e.{partner} IS NULL"
        stats.partner[column] = partner or ""
        # t: the finer token, kept when its block is within the cap; left: the group that is
        # still too big (finer block, or the whole block without a partner), tiled below
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE cap_{column} AS
            WITH f AS (SELECT e.{id_column} AS id, e.{column} AS v,
                              CASE WHEN {partner_missing} THEN NULL ELSE {finer} END AS t
                       FROM {table} e SEMI JOIN cap_big_{column} b ON e.{column} = b.v),
                 n AS (SELECT id, v, t, count(*) OVER (PARTITION BY t) AS size FROM f)
            SELECT id, CASE WHEN t IS NOT NULL AND size <= {cap} THEN t END AS t,
                   CASE WHEN t IS NULL OR size > {cap} THEN CAST(hash(coalesce(t, v), '{column}') >> 1 AS BIGINT) END AS left_group
            FROM n""")
        refined, dropped = con.execute(
            f"SELECT count(t), count(*) - count(t) FROM cap_{column}").fetchall()[0]
        stats.refined_encodings[column], stats.dropped_encodings[column] = int(refined), int(dropped)
        fallback_parts.append(f"SELECT id, left_group AS tok FROM cap_{column} WHERE left_group IS NOT NULL")
        for index, sig in by_scope.get(column, []):
            fallback_parts += [f"SELECT e.{id_column} AS id, {band} AS tok "
                               f"FROM {table} e SEMI JOIN cap_big_{column} b ON e.{column} = b.v"
                               for band in _band_tokens(sig, index, f"e.{column}")]
        replaced.append(column)
    if replaced:
        _fallback_tokens(con, table, id_column, columns, fallback_parts, cap, stats)
    for column in columns:
        con.execute(f"DROP TABLE cap_big_{column}")
    if not replaced:
        return stats
    joins = " ".join(f"LEFT JOIN cap_{c} ON cap_{c}.id = e.{id_column}" for c in replaced)
    swaps = ", ".join(f"CASE WHEN cap_{c}.id IS NULL THEN e.{c} ELSE cap_{c}.t END AS {c}" for c in replaced)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE cap_new AS
                    SELECT e.* REPLACE ({swaps}, fb.toks AS {FALLBACK_COLUMN})
                    FROM {table} e {joins} LEFT JOIN cap_fallback fb ON fb.id = e.{id_column}""")
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM cap_new")
    con.execute("DROP TABLE cap_new")
    con.execute("DROP TABLE cap_fallback")
    for c in replaced:
        con.execute(f"DROP TABLE cap_{c}")
    return stats


def _fallback_tokens(con: duckdb.DuckDBPyConnection, table: str, id_column: str, columns: list[str],
                     parts: list[str], cap: int, stats: CapStats) -> None:
    """``cap_fallback(id, toks)``: every fallback group of two or more rows within the cap
    keeps its token (a token of one row makes no pair and is left out); a bigger one is cut
    into overlapping tiles of ``cap // 2`` rows in the order of the original tokens (so rows
    alike on the next keys sit together), each row in two tiles: a chain of pairs that still
    connects the group, at most ``cap`` partners per row."""
    tile = max(cap // 2, 2)
    order = ", ".join([f"e.{c}" for c in columns] + [f"e.{id_column}"])
    # one part (a band, a column's leftover groups) at a time: each token belongs to one part,
    # and the rows of all parts at once (tens of millions of bands at 10M contacts) need not
    # be held together; only tokens of two or more rows are kept
    con.execute("CREATE OR REPLACE TEMP TABLE cap_kept (id BIGINT, tok BIGINT, size BIGINT)")
    for part in parts:
        con.execute(f"""INSERT INTO cap_kept SELECT id, tok, size FROM (
                            SELECT id, tok, count(*) OVER (PARTITION BY tok) AS size FROM ({part}) WHERE tok IS NOT NULL)
                        WHERE size > 1""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cap_fallback AS
        WITH ranked AS (SELECT c.id, c.tok, row_number() OVER (PARTITION BY c.tok ORDER BY {order}) - 1 AS rn
                        FROM cap_kept c JOIN {table} e ON e.{id_column} = c.id WHERE c.size > {cap}),
             kept AS (SELECT id, tok FROM cap_kept WHERE size <= {cap}
                      UNION ALL
                      SELECT id, CAST(hash(tok, 0, rn // {tile}) >> 1 AS BIGINT) FROM ranked
                      UNION ALL
                      SELECT id, CAST(hash(tok, 1, (rn + {tile // 2}) // {tile}) >> 1 AS BIGINT) FROM ranked)
        SELECT id, list(tok) AS toks FROM kept GROUP BY id""")
    con.execute("DROP TABLE cap_kept")
    rows, groups = con.execute("SELECT count(*), coalesce(sum(len(toks)), 0) FROM cap_fallback").fetchall()[0]
    stats.fallback_encodings, stats.fallback_tokens = int(rows), int(groups)


def largest_block(con: duckdb.DuckDBPyConnection, table: str = "link_encodings") -> int:
    """Rows sharing the most common token value of any ``blk__*`` column (0 if none)."""
    sizes = [con.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {table} "
                         f"WHERE {c} IS NOT NULL GROUP BY {c})").fetchall()[0][0] for c in token_columns(con, table)]
    return int(max(sizes, default=0))
