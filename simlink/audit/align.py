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

from simlink.audit.reference import Reference

WINDOW = 8  # how far down the list past the class's rank a name may be sought


@dataclass(frozen=True)
class AlignOptions:
    min_persons: int = 2  # a class seen on one person has no frequency signal
    max_classes: int = 400  # per group: far down the ranking, frequencies are noise
    tolerance: float = 1.0  # popcount fit, in bits; None-like (inf) = ignore popcounts
    max_names: int = 3000


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


def align(classes: np.ndarray, groups: np.ndarray, persons: np.ndarray, reference: Reference, field_name: str,
          group_year: dict[int, int], class_pop: np.ndarray | None = None,
          predicted: dict[str, float] | None = None, options: AlignOptions = AlignOptions()) -> np.ndarray:
    """A name guess per record (object array, None = no guess).

    ``classes``/``groups``/``persons``: a label per record (-1 = none). ``group_year`` maps a
    group to a birth year (the list used) — groups without one use the national list.
    ``class_pop``: observed popcount per class label; ``predicted``: name -> popcount.
    """
    guesses = np.full(len(classes), None, dtype=object)
    if not (classes >= 0).any():
        return guesses
    table = class_table(classes, groups, persons)
    table = table[table.persons >= options.min_persons]
    use_pop = class_pop is not None and predicted is not None and np.isfinite(options.tolerance)
    named: dict[int, str] = {}
    for grp, block in table.groupby("grp", sort=False):
        year = group_year.get(int(grp), -1)
        listed = reference.names_in_year(field_name, year) if year >= 0 else reference.names(field_name)
        names = list(listed)[: options.max_names]
        if not names:
            continue
        pred = np.array([predicted.get(n, np.nan) for n in names]) if use_pop else None
        free = np.ones(len(names), bool)
        order = block.sort_values(["persons", "records"], ascending=False).index.to_numpy()[: options.max_classes]
        for rank, cls in enumerate(order):  # loops over classes (a few hundred per group), not records
            window = np.flatnonzero(free)[: WINDOW + rank // 2]
            if use_pop:
                window = window[np.abs(pred[window] - class_pop[cls]) <= options.tolerance]
            if len(window) == 0:
                continue
            free[window[0]] = False
            named[int(cls)] = names[window[0]]
    if named:
        lookup = pd.Series(named)
        has = classes >= 0
        guesses[has] = lookup.reindex(classes[has]).to_numpy()
        guesses[pd.isna(guesses)] = None
    return guesses


def popcount_guess(pops: np.ndarray, groups: np.ndarray, reference: Reference, field_name: str,
                   group_year: dict[int, int], predicted: dict[str, float], tolerance: float = 0.0,
                   max_names: int = 3000) -> np.ndarray:
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
