"""Frequency alignment of record classes with a public list, inside groups.

Every linkage-unit attack ends here: it has put records into classes it believes share a
name (equal filters, similarity clusters, classes grown through linked persons) and into
groups it can attack separately (salt groups, known birth years). Inside each group, the
classes carrying the most distinct *persons* are paired in order with the list's commonest
names for that group (the list by year of birth where the group has a year), keeping only
names whose popcount under the public schema (from the attacker's own encoding) fits.
Counting persons rather than records stops a frequent contacter from posing as a common name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from simlink.audit.reference import Reference

FORBIDDEN = 1e12  # cost of a pair whose popcounts do not fit


@dataclass(frozen=True)
class AlignOptions:
    min_persons: int = 1
    max_classes: int = 400  # per group: far down the ranking, frequencies are noise
    tolerance: float = 1.0  # popcount fit, in bits; None-like (inf) = ignore popcounts
    max_names: int = 2000


def class_table(classes: np.ndarray, groups: np.ndarray, persons: np.ndarray) -> pd.DataFrame:
    """Per class: distinct persons, records and the modal group of its records."""
    keep = classes >= 0
    frame = pd.DataFrame({"cls": classes[keep], "grp": groups[keep], "person": persons[keep]})
    weight = frame.groupby("cls").agg(persons=("person", "nunique"), records=("person", "size"))
    modal = (frame.groupby(["cls", "grp"]).size().rename("n").reset_index()
             .sort_values(["cls", "n"], ascending=[True, False]).drop_duplicates("cls").set_index("cls"))
    weight["grp"] = modal["grp"]
    weight["grp_share"] = modal["n"] / weight["records"]
    return weight


def group_list(reference: Reference, field_name: str, year: int, year_weight: float, max_names: int) -> dict[str, float]:
    """The list an attacker uses for one group: by-year shares mixed with national shares
    (lists by year drawn from a sample are noisy; mixing is the attacker's choice)."""
    national = reference.names(field_name)
    if year < 0 or year_weight <= 0:
        return dict(list(national.items())[:max_names])
    yearly = reference.names_in_year(field_name, year)
    mixed = {n: year_weight * yearly.get(n, 0.0) + (1 - year_weight) * p for n, p in list(national.items())[:max_names]}
    for n, p in yearly.items():
        mixed.setdefault(n, year_weight * p)
    return dict(sorted(mixed.items(), key=lambda kv: -kv[1])[:max_names])


def align(classes: np.ndarray, groups: np.ndarray, persons: np.ndarray, reference: Reference, field_name: str,
          group_year: dict[int, int], class_pop: np.ndarray | None = None,
          predicted: dict[str, float] | None = None, options: AlignOptions = AlignOptions(),
          year_weight: float = 0.5) -> np.ndarray:
    """A name guess per record (object array, None = no guess).

    ``classes``/``groups``/``persons``: a label per record (-1 = none). ``group_year`` maps a
    group to a birth year (the list used) — groups without one use the national list.
    ``class_pop``: observed popcount per class label; ``predicted``: name -> popcount.
    Inside a group, classes and names are paired one to one by minimum cost (Hungarian):
    the Poisson log-likelihood of the class's person count given the name's expected count,
    pairs whose popcounts do not fit forbidden.
    """
    guesses = np.full(len(classes), None, dtype=object)
    if not (classes >= 0).any():
        return guesses
    table = class_table(classes, groups, persons)
    table = table[table.persons >= options.min_persons]
    if table.empty:
        return guesses
    use_pop = class_pop is not None and predicted is not None and np.isfinite(options.tolerance)
    named: dict[int, str] = {}
    lists: dict[int, tuple[list[str], np.ndarray, np.ndarray | None]] = {}
    table = table.sort_values(["grp", "persons", "records"], ascending=[True, False, False])
    cls_all, grp_all = table.index.to_numpy(), table["grp"].to_numpy()
    persons_all = table["persons"].to_numpy(dtype=float)
    starts = np.flatnonzero(np.r_[True, grp_all[1:] != grp_all[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(grp_all)]):  # one pass per group
        year = group_year.get(int(grp_all[start]), -1)
        if year not in lists:  # one list per birth year, not per group
            listed = group_list(reference, field_name, year, year_weight, options.max_names)
            names = list(listed)
            pred = np.array([predicted.get(n, np.nan) for n in names]) if use_pop else None
            lists[year] = (names, np.array([listed[n] for n in names]), pred)
        names, share, pred = lists[year]
        if not names:
            continue
        stop = min(stop, start + options.max_classes)
        block_cls, count = cls_all[start:stop], persons_all[start:stop]
        width = min(len(names), 4 * len(block_cls) + 100)  # names far below the classes' ranks never win
        expected = np.maximum(share[:width] * count.sum(), 1e-9)
        cost = -(count[:, None] * np.log(expected)[None, :] - expected[None, :])  # Poisson, up to a constant
        fits = None
        if use_pop:
            fits = np.abs(pred[None, :width] - class_pop[block_cls][:, None]) <= options.tolerance
            cost = np.where(fits, cost, FORBIDDEN)
        # Rows that fit every name or none (constant-popcount names, empty filters) keep the
        # Monge order; any partial fit needs the general solver.
        free = np.ones(len(block_cls), bool) if fits is None else fits.all(axis=1)
        if fits is None or (free | ~fits.any(axis=1)).all():
            by_share = np.argsort(-share[:width], kind="stable")  # the Monge order needs names by share
            ordered = cost[np.flatnonzero(free)][:, by_share]
            if ordered.shape[0] <= width:
                rows, cols = monotone_assignment(ordered)
            else:  # fewer names than classes: each name picks a class, in the same order
                cols, rows = monotone_assignment(ordered.T)
            rows, cols = np.flatnonzero(free)[rows], by_share[cols]
        else:
            rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] < FORBIDDEN
        for cls, j in zip(block_cls[rows[ok]].tolist(), cols[ok].tolist()):
            named[int(cls)] = names[j]
    if named:
        lookup = pd.Series(named)
        has = classes >= 0
        guesses[has] = lookup.reindex(classes[has]).to_numpy()
        guesses[pd.isna(guesses)] = None
    return guesses


def monotone_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of every row to a distinct column when no order crossing helps.

    Rows are classes by persons, descending; columns are names by share, descending; the
    Poisson cost ``-(c log e - e)`` is Monge in that order (``(c1 - c2)(log e1 - log e2) >= 0``),
    so an optimal assignment keeps rows and columns in order, and a dynamic programme over
    prefix minima finds it in O(rows x columns) numpy work instead of the Hungarian method's
    cubic time (the similarity attack on scoped copies has hundreds of one-person classes
    per birth year). With popcount constraints the matrix is not Monge: the caller uses
    ``linear_sum_assignment`` then.
    """
    k, m = cost.shape
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # best[j] = least cost of assigning the rows so far using columns < j + 1, last at <= j
    took = np.zeros((k, m), dtype=bool)
    previous = np.zeros(m + 1)  # previous[j] = best of rows so far within the first j columns
    for i in range(k):
        reach = np.full(m, np.inf)
        reach[i:] = previous[i:m] + cost[i, i:]  # row i at column j after rows < i within columns < j
        best = np.minimum.accumulate(reach)
        took[i] = reach <= best  # column j is where row i sits in the prefix's optimum
        previous = np.concatenate([[np.inf], best]) if i + 1 < k else previous
        last = best
    cols = np.empty(k, dtype=np.int64)
    j = int(np.argmin(last))
    for i in range(k - 1, -1, -1):
        while not took[i, j]:
            j -= 1
        cols[i] = j
        j -= 1
    return np.arange(k), cols


def popcount_guess(pops: np.ndarray, groups: np.ndarray, reference: Reference, field_name: str,
                   group_year: dict[int, int], predicted: dict[str, float], tolerance: float = 0.0,
                   max_names: int = 2000) -> np.ndarray:
    """Per record: the commonest name of its group's list whose predicted popcount fits the
    observed one (pops < 0 = no filter). Vectorised over (group, popcount) pairs."""
    guesses = np.full(len(pops), None, dtype=object)
    has = pops >= 0
    if not has.any():
        return guesses
    pairs = pd.DataFrame({"grp": groups[has], "pop": pops[has]}).drop_duplicates()
    answer: dict[tuple[int, int], str] = {}
    for grp, block in pairs.groupby("grp"):  # one pass per group, popcounts vectorised
        year = group_year.get(int(grp), -1)
        listed = reference.names_in_year(field_name, year) if year >= 0 else reference.names(field_name)
        names = [n for n in list(listed)[:max_names] if n in predicted]
        if not names:
            continue
        pred = np.array([predicted[n] for n in names])
        observed = block["pop"].to_numpy()
        fits = np.abs(pred[None, :] - observed[:, None]) <= tolerance  # (pops, names), names by frequency
        first = np.where(fits.any(axis=1), fits.argmax(axis=1), -1)
        for p, j in zip(observed.tolist(), first.tolist()):
            if j >= 0:
                answer[(int(grp), int(p))] = names[j]
    keys = pd.MultiIndex.from_arrays([groups[has], pops[has]])
    guesses[has] = pd.Series(answer, dtype=object).reindex(keys).to_numpy() if answer else None
    guesses[pd.isna(guesses)] = None
    return guesses
