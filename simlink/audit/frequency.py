"""Frequency alignment attack (Kuzu et al. 2011, in its simplest strong form).

Equal names give equal filters, so the table of distinct filters and their record counts
mirrors the name distribution. The attacker sorts both by frequency and pairs them, using
the filter weight (popcount) the public schema predicts for each name to choose between
names of similar frequency. Deterministic hardening (permutation, keyed BLIP, folding,
balancing) keeps equal names equal, so only record-level salting weakens this attack.
"""

from __future__ import annotations

import numpy as np

from simlink.audit.encoded import FieldFilters
from simlink.audit.model import expected_popcount, name_tokens

WINDOW = 8  # how far down the reference ranking a filter's name may be sought


def frequency_attack(filters: FieldFilters, reference: dict[str, float], *, min_count: int = 2,
                     max_names: int = 5000) -> tuple[list[str | None], np.ndarray]:
    """A name guess (or None) and a confidence in [0, 1] per distinct filter.

    Only filters seen at least ``min_count`` times are aligned: a name seen once has no
    frequency signal. Greedy in order of filter frequency; the cost mixes the gap in
    log-frequency and the gap between observed and predicted popcount.
    """
    n_distinct = len(filters.counts)
    guesses: list[str | None] = [None] * n_distinct
    confidence = np.zeros(n_distinct)
    if n_distinct == 0 or not reference:
        return guesses, confidence
    names = list(reference)[:max_names]
    p_ref = np.array([reference[n] for n in names])
    expected = expected_popcount(filters.spec, np.array([len(t) for t in name_tokens(filters.spec, names)]))
    popcount = filters.matrix.sum(axis=1)
    total = filters.counts.sum()
    order = np.argsort(-filters.counts, kind="stable")
    order = order[filters.counts[order] >= min_count]
    free = np.ones(len(names), dtype=bool)
    for rank, i in enumerate(order):
        candidates = np.flatnonzero(free)[: WINDOW + rank // 4]
        if len(candidates) == 0:
            break
        share = filters.counts[i] / total
        cost = np.abs(np.log(p_ref[candidates]) - np.log(share))
        if expected is not None:
            cost = cost + np.abs(expected[candidates] - popcount[i]) / 2.0
        best = np.argsort(cost)[:2]
        chosen = candidates[best[0]]
        free[chosen] = False
        guesses[i] = names[chosen]
        margin = (cost[best[1]] - cost[best[0]]) if len(best) > 1 else 1.0
        confidence[i] = float(min(1.0, margin))
    return guesses, confidence
