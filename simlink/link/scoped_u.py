"""u probabilities of scoped comparisons, estimated inside the scopes.

A format-2 copy (a name salted by the date of birth, say) can only be compared between
records that share the scope value. So its u is conditional: the chance of each level for
two *different* people who share a date of birth (or a postcode, or a whole name). Random
sampling cannot estimate it: random pairs rarely share a scope, and those that do are
mostly the same person (repeat contacts), which would make agreement look common among
non-matches. EM with free u collapses for the same reason.

Instead the sample is every pair of distinct encodings that shares one of the scopes, less
the near-certain matches (the deterministic rules of the prior: two whole-value tokens
equal), drawn reproducibly up to ``max_pairs``. What remains is mostly different people who
happen to share the scope value; true matches left in it (a typo and a move at once) make
agreement look a little more common among non-matches, so the estimate errs on the side of
fewer links.
"""

from __future__ import annotations

import duckdb
import numpy as np

U_FLOOR = 1e-6  # a level never seen among the sampled non-matches: rare, not impossible


def _pair_sample_sql(columns: list[str], scope_columns: list[str], exclude: list[str], max_pairs: int,
                     seed: int) -> str:
    select = ", ".join(f'l."{c}" AS "{c}_l", r."{c}" AS "{c}_r"' for c in columns)
    excluded = f"AND NOT COALESCE(({' OR '.join(f'({e})' for e in exclude)}), FALSE)" if exclude else ""
    # One equi-join per scope (an OR join would be a nested loop), each pair once.
    pairs = " UNION ".join(f"""SELECT l.enc_id AS a, r.enc_id AS b FROM link_encodings l JOIN link_encodings r
                               ON l.{t} = r.{t} AND l.enc_id < r.enc_id WHERE TRUE {excluded}""" for t in scope_columns)
    return f"""
        SELECT {select}
        FROM (SELECT * FROM ({pairs}) USING SAMPLE reservoir({int(max_pairs)} ROWS) REPEATABLE ({int(seed)})) p
        JOIN link_encodings l ON l.enc_id = p.a JOIN link_encodings r ON r.enc_id = p.b"""


def _level_sql(comparison) -> str:
    cases = " ".join(f"WHEN {lvl.sql_condition} THEN {lvl.comparison_vector_value}"
                     for lvl in comparison.comparison_levels if not lvl._is_else_level)
    return f"CASE {cases} ELSE 0 END"


def draw_sample(con: duckdb.DuckDBPyConnection, comparisons: list, scope_columns: list[str],
                near_certain_rules: list[str], *, max_pairs: int = 1_000_000, seed: int = 42) -> bool:
    """Table ``scoped_u_pairs``: the sampled pairs' comparison levels (``g_<comparison>``)."""
    if not comparisons or not scope_columns:
        return False
    columns = [r[0] for r in con.execute("DESCRIBE link_encodings").fetchall()]
    levels = ", ".join(f"{_level_sql(c)} AS g_{c.output_column_name}" for c in comparisons)
    con.execute(f"CREATE OR REPLACE TEMP TABLE scoped_u_pairs AS SELECT {levels} FROM ("
                + _pair_sample_sql(columns, scope_columns, near_certain_rules, max_pairs, seed) + ")")
    return True


def estimate(con: duckdb.DuckDBPyConnection, scoped: list[str], comparisons: list,
             iterations: int = 100) -> dict[str, dict[int, float]]:
    """u per level of each scoped comparison: Fellegi-Sunter EM (m, u and the match share all
    free) on the sampled pairs, which are a mixture of matches and different people sharing
    a scope. Runs in numpy on the distinct comparison patterns and their counts."""
    names = [c.output_column_name for c in comparisons]
    rows = con.execute(f"SELECT {', '.join('g_' + n for n in names)}, count(*) FROM scoped_u_pairs "
                       "GROUP BY ALL").fetchall()
    if not rows:
        return {}
    patterns = np.array([r[:-1] for r in rows], dtype=np.int64)
    counts = np.array([r[-1] for r in rows], dtype=np.float64)
    levels = [sorted({lvl.comparison_vector_value for lvl in c.comparison_levels if not lvl.is_null_level})
              for c in comparisons]
    # Start: matches agree at the top level, non-matches spread like the sample.
    m, u = [], []
    for k, lv in enumerate(levels):
        top = max(lv)
        m.append({l: (0.9 if l == top else 0.1 / max(len(lv) - 1, 1)) for l in lv})
        seen = patterns[:, k] >= 0
        total = counts[seen].sum()
        u.append({l: max(counts[patterns[:, k] == l].sum() / total if total else 1 / len(lv), U_FLOOR) for l in lv})
    share = 0.5
    for _ in range(iterations):
        log_odds = np.full(len(counts), np.log(share / (1 - share)))
        for k in range(len(levels)):
            g = patterns[:, k]
            for l in levels[k]:
                log_odds[g == l] += np.log(m[k][l] / u[k][l])
        p = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        share = float(np.clip((counts * p).sum() / counts.sum(), 1e-6, 1 - 1e-6))
        for k in range(len(levels)):
            g = patterns[:, k]
            seen = g >= 0
            wm, wu = (counts * p)[seen].sum(), (counts * (1 - p))[seen].sum()
            for l in levels[k]:
                at = g == l
                m[k][l] = max((counts * p)[at].sum() / wm, U_FLOOR) if wm > 0 else m[k][l]
                u[k][l] = max((counts * (1 - p))[at].sum() / wu, U_FLOOR) if wu > 0 else u[k][l]
    return {names[k]: u[k] for k in range(len(names)) if names[k] in scoped}


def apply(linker, estimates: dict[str, dict[int, float]]) -> None:
    """Write the estimates into the linker's model (Splink keeps them fixed during EM)."""
    settings = linker._settings_obj.core_model_settings
    for name, levels in estimates.items():
        comparison = settings.get_comparison_by_output_column_name(name)
        for level in comparison.comparison_levels:
            if not level.is_null_level:
                value = levels.get(level.comparison_vector_value, U_FLOOR)
                # Splink rebuilds u from each level's list of trained values after every training
                # step: the scoped estimate replaces the random-sampling one there too.
                level._trained_u_probabilities = [
                    {"probability": value, "description": "EM inside the scopes (simlink)", "m_or_u": "u"}]
                level.u_probability = value
