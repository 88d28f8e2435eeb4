"""Pattern-mining attack: bit positions → q-grams → names (after Niedermeyer et al. 2014,
Kroll & Steinmetzer 2015, Christen et al. 2017).

Without the key the attacker cannot compute where a q-gram lands, but can *learn* it: in
filters believed to contain a q-gram, its k positions are always set, and in the others
they are mostly clear. Seeds (filter, believed name) come from the frequency alignment;
the positions of every q-gram seen in the seeds are mined from them; then every filter,
including those of rare names that frequency alone cannot touch, is decoded by matching it
against the predicted pattern of every reference name. Confident decodings become new
seeds and the loop repeats, so a partly wrong seed set still converges.
"""

from __future__ import annotations

import numpy as np

from simlink.audit.encoded import FieldFilters
from simlink.audit.model import flip_probability, name_tokens

ROUNDS = 4
ACCEPT = 0.95  # score a decoding needs to become a seed for the next round
MARGIN = 0.05
Z_MIN = 5.0  # z-score a position's lift needs to be taken as a token's position
MIN_POSITIONS = 3  # a token with fewer learned positions is too easily faked by others


def _learn_positions(seed_matrix: np.ndarray, seed_tokens: np.ndarray, hit_rate: float,
                     hashes: int) -> np.ndarray:
    """(tokens, bits) bool: for each token, the positions set far more often in seeds that
    (are believed to) contain it than in the others.

    Seeds may be mostly wrong: a wrong seed only dilutes the lift of the true positions,
    so positions are chosen by a z-score of the lift rather than a fixed rate. With clean
    seeds (``hit_rate`` of the rate is reached) the positions are taken outright.
    """
    seeds = seed_matrix.astype(np.float32)
    with_token = seed_tokens.astype(np.float32)
    n_with = with_token.sum(axis=0)[:, None]
    n_without = len(seeds) - n_with
    rate_with = (with_token.T @ seeds) / np.maximum(n_with, 1)
    rate_without = ((1 - with_token).T @ seeds) / np.maximum(n_without, 1)
    lift = rate_with - rate_without
    base = np.clip(rate_without, 0.01, 0.99)
    z = lift / np.sqrt(base * (1 - base) / np.maximum(n_with, 1) + base * (1 - base) / np.maximum(n_without, 1))
    learned = (n_with >= 2) & (((rate_with >= hit_rate) & (lift >= 0.5)) | (z >= Z_MIN))
    # keep at most k positions per token, the most discriminating ones
    if learned.any():
        ranks = np.argsort(np.argsort(-np.where(learned, z, -np.inf), axis=1), axis=1)
        learned &= ranks < hashes
    return learned


def _decode(matrix: np.ndarray, positions: np.ndarray, name_token: np.ndarray, hit_rate: float,
            prior: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best name index, its score and the margin over the runner-up, per filter.

    A learned token is *detected* in a filter when (nearly) all its positions are set; the
    score of a name is the Jaccard index between the detected tokens and the name's
    learned tokens, ties going to the more common name.
    """
    size = positions.sum(axis=1)
    usable = size >= MIN_POSITIONS
    best = np.full(len(matrix), -1, dtype=np.int64)
    score = np.zeros(len(matrix))
    margin = np.zeros(len(matrix))
    if not usable.any():
        return best, score, margin
    pos = positions[usable].astype(np.float32)
    need = np.ceil(size[usable] * hit_rate - 1e-9)
    known = name_token[:, usable].astype(np.float32)
    known_size = known.sum(axis=1)
    candidates = known_size > 0
    # bit-level check on the positions the learned tokens cover: a name's predicted bits
    # should account for the filter's bits there, and be set in it
    universe = pos.any(axis=0)
    predicted = ((known @ pos) > 0)[:, universe].astype(np.float32)
    predicted_size = predicted.sum(axis=1)
    for start in range(0, len(matrix), 2048):
        block = matrix[start:start + 2048].astype(np.float32)
        detected = ((block @ pos.T) >= need[None, :]).astype(np.float32)
        inter = detected @ known.T
        union = detected.sum(axis=1)[:, None] + known_size[None, :] - inter
        bits = block[:, universe]
        bit_inter = bits @ predicted.T
        bit_union = bits.sum(axis=1)[:, None] + predicted_size[None, :] - bit_inter
        combined = 0.5 * inter / np.maximum(union, 1) + 0.5 * bit_inter / np.maximum(bit_union, 1)
        jaccard = np.where(candidates[None, :], combined, -1.0) + 1e-6 * prior[None, :]
        top2 = np.argsort(-jaccard, axis=1)[:, :2]
        rows = np.arange(len(block))
        best[start:start + len(block)] = top2[:, 0]
        score[start:start + len(block)] = jaccard[rows, top2[:, 0]]
        margin[start:start + len(block)] = jaccard[rows, top2[:, 0]] - jaccard[rows, top2[:, 1]]
    return best, score, margin


def pattern_attack(filters: FieldFilters, reference: dict[str, float], seeds: list[str | None],
                   *, max_names: int = 20000, max_filters: int = 50000) -> tuple[list[str | None], np.ndarray]:
    """A name guess (or None) and its score per distinct filter.

    ``seeds`` holds an initial belief (a name or None) per distinct filter, typically the
    output of :func:`simlink.audit.frequency.frequency_attack`. Only the ``max_filters``
    most common distinct filters are decoded (bounds time on very large files; the rest
    are rare values, each a tiny share of records).
    """
    n_distinct = len(filters.counts)
    if n_distinct == 0 or not reference:
        return [None] * n_distinct, np.zeros(n_distinct)
    if n_distinct > max_filters:
        keep = np.sort(np.argsort(-filters.counts, kind="stable")[:max_filters])
        sub = FieldFilters(filters.spec, filters.matrix[keep], filters.counts[keep], np.zeros(0, np.int64))
        sub_guesses, sub_score = pattern_attack(sub, reference, [seeds[i] for i in keep],
                                                max_names=max_names, max_filters=max_filters)
        guesses: list[str | None] = [None] * n_distinct
        score = np.zeros(n_distinct)
        for j, i in enumerate(keep.tolist()):
            guesses[i], score[i] = sub_guesses[j], sub_score[j]
        return guesses, score
    spec = filters.spec
    names = list(reference)[:max_names]
    known = {n: i for i, n in enumerate(names)}
    token_sets = name_tokens(spec, names)
    vocabulary = sorted({t for s in token_sets for t in s}, key=repr)
    token_index = {t: j for j, t in enumerate(vocabulary)}
    name_token = np.zeros((len(names), len(vocabulary)), dtype=bool)
    for i, tokens in enumerate(token_sets):
        name_token[i, [token_index[t] for t in tokens]] = True
    prior = np.log(np.array([reference[n] for n in names]) + 1e-12)
    prior = (prior - prior.min()) / max(np.ptp(prior), 1e-9)
    flip = flip_probability(spec)
    hit_rate = 1.0 if flip == 0 else max(0.5, 1.0 - flip - 0.15)
    seed_rows = np.array([i for i, s in enumerate(seeds) if s is not None and s in known], dtype=np.int64)
    seed_names = np.array([known[seeds[i]] for i in seed_rows], dtype=np.int64)
    first_rows, first_names = seed_rows, seed_names
    best = np.full(n_distinct, -1, dtype=np.int64)
    score = np.zeros(n_distinct)
    for _ in range(ROUNDS):
        if len(seed_rows) < 2:
            break
        positions = _learn_positions(filters.matrix[seed_rows], name_token[seed_names], hit_rate, spec.hashes)
        best, score, margin = _decode(filters.matrix, positions, name_token, hit_rate, prior)
        accepted = (best >= 0) & (score >= ACCEPT) & (margin >= MARGIN)
        # keep the original seeds and add the confident decodings
        accepted[first_rows] = False
        seed_rows = np.concatenate([first_rows, np.flatnonzero(accepted)])
        seed_names = np.concatenate([first_names, best[accepted]])
    # a score of zero means nothing was detected: the "guess" would be the prior alone
    guesses = [names[b] if b >= 0 and s > 1e-3 else None for b, s in zip(best, score)]
    return guesses, score
