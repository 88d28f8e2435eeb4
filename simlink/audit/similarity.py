"""Similarity clusters of one field's filters: MinHash LSH candidates, a Dice cut, union-find.

Per-record noise makes equal names give different filters, but they stay *similar*: the
linkage unit can cluster a field's filters by similarity and treat each cluster as a name.
Candidates come from banded MinHash over the set bits (so no all-pairs pass), each candidate
pair is kept when its Dice reaches the cut, and connected components are the clusters.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BANDS, ROWS = 16, 4
MAX_BUCKET = 64  # larger LSH buckets contribute a chain through their members, not all pairs
PAIR_CHUNK = 1 << 20


def minhash(bits: np.ndarray, n_hashes: int, seed: int = 0) -> np.ndarray:
    """(n, n_hashes) MinHash signatures of the set bits of each row."""
    n, m = bits.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n, n_hashes), dtype=np.int32)
    for h in range(n_hashes):
        rank = rng.permutation(m).astype(np.int32)
        out[:, h] = np.where(bits, rank[None, :], m).min(axis=1)
    return out


def candidate_pairs(bits: np.ndarray, seed: int = 0) -> np.ndarray:
    """(k, 2) distinct row pairs (i < j) sharing at least one LSH band."""
    n = bits.shape[0]
    if n < 2:
        return np.zeros((0, 2), np.int64)
    signature = minhash(bits, BANDS * ROWS, seed).astype(np.uint64)
    found = []
    for b in range(BANDS):
        band = signature[:, b * ROWS:(b + 1) * ROWS]
        key = np.zeros(n, np.uint64)
        for r in range(ROWS):
            key = (key * np.uint64(0x9E3779B97F4A7C15)) ^ (band[:, r] + np.uint64(r + 1))
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for size in np.unique(sizes[sizes >= 2]):
            members = order[starts[sizes == size][:, None] + np.arange(size)[None, :]]
            if size <= MAX_BUCKET:
                i, j = np.triu_indices(size, 1)
                found.append(np.stack([members[:, i].ravel(), members[:, j].ravel()], axis=1))
            else:  # a chain through the bucket keeps it connected at a bounded cost
                found.append(np.stack([members[:, :-1].ravel(), members[:, 1:].ravel()], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs = np.sort(np.concatenate(found), axis=1).astype(np.int64)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


def pair_dice(bits: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    packed = np.packbits(bits, axis=1)
    pops = bits.sum(axis=1)
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), PAIR_CHUNK):
        p = pairs[start:start + PAIR_CHUNK]
        common = np.bitwise_count(packed[p[:, 0]] & packed[p[:, 1]]).sum(axis=1)
        total = pops[p[:, 0]] + pops[p[:, 1]]
        out[start:start + len(p)] = np.where(total > 0, 2.0 * common / np.maximum(total, 1), 0.0)
    return out


def clusters(bits: np.ndarray, cuts: list[float], seed: int = 0) -> dict[float, np.ndarray]:
    """Cluster label per row for each Dice cut (rows joined by candidate pairs at or above it)."""
    n = bits.shape[0]
    pairs = candidate_pairs(bits, seed)
    dice = pair_dice(bits, pairs) if len(pairs) else np.zeros(0)
    out = {}
    for cut in cuts:
        keep = pairs[dice >= cut]
        graph = coo_matrix((np.ones(len(keep), np.int8), (keep[:, 0], keep[:, 1])), shape=(n, n))
        out[cut] = connected_components(graph, directed=False)[1]
    return out
