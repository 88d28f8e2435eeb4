"""u probabilities of the name comparison, estimated inside the scopes (format 2).

Names are stored only as copies salted by scopes (the full date of birth, the full
postcode), so two records' names can be compared only when they share a scope value. The
comparison's u is therefore conditional: how often two *different* people who share a date
of birth (or a postcode) have identical or similar names. Random sampling cannot estimate
it: random pairs rarely share a scope, and those that do are mostly the same person (repeat
contacts): identical given names came out at u = 0.35 instead of about 0.004. Splink's EM
with free u stops on levels whose pairs are all matches.

So, per scope, a reproducible sample of the pairs of distinct encodings that share its
value, a mixture of matches and different people, is fitted by two-class Fellegi-Sunter EM
(m, u and the match share all free; numpy on the distinct comparison patterns and their
counts). As in Splink's EM passes, comparisons of the fields the scope is made of are left
out of that scope's fit (every sampled pair agrees on them by selection). The names' u is
the average over the scopes, weighted by the number of comparable sampled pairs. Everything
else is trained the Splink way (:mod:`simlink.link.model`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import numpy as np

U_FLOOR = 1e-6  # a level never seen among the sampled non-matches: rare, not impossible
_ITERATIONS = 100


def _level_sql(comparison) -> str:
    cases = " ".join(f"WHEN {lvl.sql_condition} THEN {lvl.comparison_vector_value}"
                     for lvl in comparison.comparison_levels if not lvl._is_else_level)
    return f"CASE {cases} ELSE 0 END"


def _pair_columns_sql(rule: str) -> str:
    """A rule written on ``l.x`` / ``r.x`` rewritten for a table of pairs (``x_l`` / ``x_r``)."""
    return re.sub(r"\b([lr])\.(\w+)", lambda m: f'"{m.group(2)}_{m.group(1)}"', rule)


def pattern_counts(con: duckdb.DuckDBPyConnection, comparisons: list, scope_column: str | None, *,
                   max_pairs: int, seed: int, sure_rules: list[str] = (),
                   events: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct comparison-level patterns (rows) and their counts among a sample of the pairs
    of distinct encodings that share ``scope_column``; SQL only. The last pattern column is 1
    where a pair meets one of ``sure_rules`` (near-certain matches: EM's starting point).

    ``events`` (a table with one ``enc_id`` per input record) adds the pairs that collapsing
    removed: an encoding held by ``n`` records stands for ``n - 1`` pairs of identical
    records, each compared with itself (every present field identical), scaled by the share
    of the scope's pairs that was sampled. Without them every sampled match differs somewhere,
    so agreements of different fields exclude each other (see :func:`estimate`).

    ``scope_column`` None: random pairs of distinct encodings instead (two samples
    of encodings, crossed).
    """
    columns = [r[0] for r in con.execute("DESCRIBE link_encodings").fetchall()]
    select = ", ".join(f'l."{c}" AS "{c}_l", r."{c}" AS "{c}_r"' for c in columns)
    levels = ", ".join(f"{_level_sql(c)} AS g{i}" for i, c in enumerate(comparisons))
    sure = " OR ".join(f"({_pair_columns_sql(r)})" for r in sure_rules) or "FALSE"
    levels += f", CAST(COALESCE({sure}, FALSE) AS INT) AS g{len(comparisons)}"
    weight = "1.0"
    if scope_column is None:
        side = max(int((2 * max_pairs) ** 0.5), 2)
        sampled = f"""SELECT a.enc_id AS a, b.enc_id AS b, 1.0 AS w
            FROM (SELECT enc_id FROM link_encodings ORDER BY hash(enc_id, {int(seed)}), enc_id LIMIT {side}) a
            JOIN (SELECT enc_id FROM link_encodings ORDER BY hash(enc_id, {int(seed) + 1}), enc_id LIMIT {side}) b
              ON a.enc_id < b.enc_id"""
        events = None
    else:
        total = con.execute(f"""SELECT coalesce(sum(k * (k - 1) / 2), 0) FROM (SELECT count(*) AS k
                                FROM link_encodings WHERE {scope_column} IS NOT NULL GROUP BY {scope_column})""").fetchall()[0][0]
        # pairs sharing a scope grow as the square of its blocks; thin them first by a hash of
        # the left encoding to about twice the sample, so the sample costs what it keeps
        thin = max(int(total) // (2 * int(max_pairs)), 1)
        keep_left = f"AND hash(l.enc_id, {int(seed) + 7}) % {thin} = 0" if thin > 1 else ""
        sampled = f"""SELECT a, b, 1.0 AS w FROM (SELECT l.enc_id AS a, r.enc_id AS b FROM link_encodings l
              JOIN link_encodings r ON l.{scope_column} = r.{scope_column} AND l.enc_id < r.enc_id {keep_left}
            ORDER BY hash(l.enc_id, r.enc_id, {int(seed)}), l.enc_id, r.enc_id LIMIT {int(max_pairs)})"""
    if events is not None:
        fraction = min(1.0, max_pairs / total) if total else 1.0
        weight = "w"
        collapsed = f"""UNION ALL SELECT e.enc_id, e.enc_id, {fraction!r} * (count(*) - 1) FROM {events} x
                        JOIN link_encodings e ON e.enc_id = x.enc_id WHERE e.{scope_column} IS NOT NULL
                        GROUP BY e.enc_id HAVING count(*) > 1"""
    rows = con.execute(f"""
        WITH sampled AS ({sampled}
            {collapsed if events is not None else ""}),
        pairs AS (SELECT p.w, {select} FROM sampled p JOIN link_encodings l ON l.enc_id = p.a
                  JOIN link_encodings r ON r.enc_id = p.b)
        SELECT {', '.join(f'g{i}' for i in range(len(comparisons) + 1))}, sum({weight})
        FROM (SELECT w, {levels} FROM pairs) GROUP BY ALL""").fetchall()
    if not rows:
        return np.zeros((0, len(comparisons) + 1), np.int64), np.zeros(0)
    return np.array([r[:-1] for r in rows], dtype=np.int64), np.array([r[-1] for r in rows], dtype=np.float64)


def mixture_em(patterns: np.ndarray, counts: np.ndarray, levels: list[list[int]], start: np.ndarray,
               active: list[bool] | None = None, iterations: int = _ITERATIONS,
               fixed_m: dict[int, dict[int, float]] | None = None) -> tuple[list[dict[int, float]], list[dict[int, float]], float]:
    """Two-class Fellegi-Sunter EM on level patterns (null levels, -1, carry no evidence):
    m and u per comparison level, and the share of matches.

    EM starts from responsibilities, not parameters: ``start`` is each pattern's first
    chance of being a match (near-certain rules say 0.99, the rest 0.01). Inactive
    comparisons carry no evidence. ``fixed_m``: comparison index -> m per level, held fixed.
    """
    active = active or [True] * len(levels)
    fixed_m = fixed_m or {}
    p = np.asarray(start, dtype=np.float64)
    m: list[dict[int, float]] = [{} for _ in levels]
    u: list[dict[int, float]] = [{} for _ in levels]
    share = 0.5
    for _ in range(iterations):
        share = float(np.clip((counts * p).sum() / counts.sum(), 1e-6, 1 - 1e-6))
        for k, lv in enumerate(levels):
            g = patterns[:, k]
            seen = g >= 0
            wm, wu = (counts * p)[seen].sum(), (counts * (1 - p))[seen].sum()
            for l in lv:
                at = g == l
                m[k][l] = max((counts * p)[at].sum() / wm, U_FLOOR) if wm > 0 else 1 / len(lv)
                u[k][l] = max((counts * (1 - p))[at].sum() / wu, U_FLOOR) if wu > 0 else 1 / len(lv)
                if l in fixed_m.get(k, {}):
                    m[k][l] = max(fixed_m[k][l], U_FLOOR)
        log_odds = np.full(len(counts), np.log(share / (1 - share)))
        for k, lv in enumerate(levels):
            if not active[k]:
                continue
            g = patterns[:, k]
            for l in lv:
                log_odds[g == l] += np.log(m[k][l] / u[k][l])
        p = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
    return m, u, share


@dataclass
class Estimates:
    """What the scoped EM found: u of the conditional comparisons, m of every comparison
    (averaged over the scopes where it is compared), by output column name and level."""

    u: dict[str, dict[int, float]]
    m: dict[str, dict[int, float]]


def _average(sums: dict[str, dict[int, float]], totals: dict[str, float]) -> dict[str, dict[int, float]]:
    return {name: {level: max(v / totals[name], U_FLOOR) for level, v in sums[name].items()}
            for name in sums if totals[name] > 0}


def estimate(con: duckdb.DuckDBPyConnection, comparisons: list, scoped: list[str], scopes: dict[str, set[str]],
             sure_rules: list[str], *, max_pairs: int = 1_000_000, seed: int = 42,
             events: str | None = None) -> Estimates:
    """u per level of each comparison named in ``scoped``, and m of every comparison.

    ``comparisons``: Splink ``Comparison`` objects (DuckDB dialect) of every field used;
    ``scopes``: blocking-token column -> the comparisons it is made of (left out there);
    ``events``: table mapping records to ``enc_id`` (adds the collapsed identical pairs).
    A scope's u counts in proportion to its non-matching pairs, its m to its matching ones.
    """
    if not scoped or not scopes:
        return Estimates({}, {})
    names = [c.output_column_name for c in comparisons]
    levels = [sorted({lvl.comparison_vector_value for lvl in c.comparison_levels if not lvl.is_null_level})
              for c in comparisons]
    u_sums: dict[str, dict[int, float]] = {n: {} for n in scoped}
    u_totals: dict[str, float] = {n: 0.0 for n in scoped}
    m_sums: dict[str, dict[int, float]] = {n: {} for n in names}
    m_totals: dict[str, float] = {n: 0.0 for n in names}
    per_scope = max(int(max_pairs) // len(scopes), 1000)
    for column, made_of in sorted(scopes.items()):
        patterns, counts = pattern_counts(con, comparisons, column, max_pairs=per_scope, seed=seed,
                                          sure_rules=sure_rules, events=events)
        if len(counts) == 0:
            continue
        active = [n not in made_of for n in names]
        start = np.where(patterns[:, -1] == 1, 0.99, 0.01)
        m, u, share = mixture_em(patterns[:, :-1], counts, levels, start, active)
        for k, name in enumerate(names):
            if not active[k]:
                continue
            seen = counts[patterns[:, k] >= 0].sum()
            for sums, totals, values, weight in ((u_sums, u_totals, u, seen * (1 - share)),
                                                 (m_sums, m_totals, m, seen * share)):
                if name in sums and weight > 0:
                    totals[name] += weight
                    for level, value in values[k].items():
                        sums[name][level] = sums[name].get(level, 0.0) + weight * value
    return Estimates(_average(u_sums, u_totals), _average(m_sums, m_totals))


def random_pair_u(con: duckdb.DuckDBPyConnection, comparisons: list, m: dict[str, dict[int, float]],
                  sure_rules: list[str], *, max_pairs: int = 1_000_000, seed: int = 42) -> dict[str, dict[int, float]]:
    """u per level of every comparison from random pairs, with the matches among them taken out.

    Splink's random sampling counts every sampled pair as a non-match. On data where each
    person has several distinct encodings (FEBRL: a person in both files; synthetic data:
    repeat contacts with typos) the matching pairs among random pairs agree on the date of
    birth about as often as different people do, so u of an identical date of birth came
    out several times too high. Here the sample is a two-class mixture whose match class has
    the scoped EM's m (held fixed): EM finds the share of matches and u of the rest.
    """
    names = [c.output_column_name for c in comparisons]
    levels = [sorted({lvl.comparison_vector_value for lvl in c.comparison_levels if not lvl.is_null_level})
              for c in comparisons]
    patterns, counts = pattern_counts(con, comparisons, None, max_pairs=max_pairs, seed=seed, sure_rules=sure_rules)
    if len(counts) == 0:
        return {}
    fixed = {k: m[n] for k, n in enumerate(names) if n in m}
    start = np.where(patterns[:, -1] == 1, 0.99, 0.0001)
    _, u, _ = mixture_em(patterns[:, :-1], counts, levels, start, fixed_m=fixed)
    return {n: u[k] for k, n in enumerate(names)}


def apply(linker, estimates: dict[str, dict[int, float]], which: str = "u") -> None:
    """Write u (or m) estimates into the linker's model (Splink keeps u fixed during EM).

    Splink rebuilds u from each level's list of trained values after every training step,
    so the list is replaced too (and the model JSON says where the value came from).
    """
    settings = linker._settings_obj.core_model_settings
    for name, levels in estimates.items():
        comparison = settings.get_comparison_by_output_column_name(name)
        for level in comparison.comparison_levels:
            if not level.is_null_level:
                value = levels.get(level.comparison_vector_value, U_FLOOR)
                trained = [{"probability": value, "description": "EM inside the scopes (simlink)", "m_or_u": which}]
                if which == "u":
                    level._trained_u_probabilities = trained
                    level.u_probability = value
                else:
                    level._trained_m_probabilities = trained
                    level.m_probability = value
