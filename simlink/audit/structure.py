"""Structure the linkage unit reads off the files themselves, before any name list.

* **Undo balancing.** A balanced filter is the filter followed by its complement, then
  permuted with a permutation fixed per field: every bit has a partner that is its
  complement in *every* record. Matching column signatures finds the pairs; the sparser
  member of each pair is the original bit, so the original filter (and its popcount, which
  tracks the name's length) comes back.
* **Recover salt groups.** Equal blocking tokens whose parts determine the salt value
  (e.g. a token over the full date of birth, or birth year and soundex), and equal unsalted
  filters of the salting field, imply an equal salt: union-find over all files at once gives
  groups of records that share a salt value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from simlink.audit.encoded import Corpus

SIGNATURE_ROWS = 512
MIN_PAIRED = 0.9  # share of columns that must pair for a filter to count as balanced

# Which blocking-part derivations fix the value of a salt derivation (same field).
DETERMINES: dict[str, frozenset[str]] = {
    "year": frozenset({"ymd", "year", "year_month"}),
    "year_month": frozenset({"ymd", "year_month"}),
    "month_day": frozenset({"ymd", "month_day"}),
    "ymd": frozenset({"ymd"}),
    "full": frozenset({"full"}),
    "sector": frozenset({"full", "sector"}),
    "district": frozenset({"full", "sector", "district"}),
    "area": frozenset({"full", "sector", "district", "area"}),
    "value": frozenset({"value"}),
}


def complement_pairs(bits: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """(k, 2) column pairs that are each other's complement in every row; None unless
    nearly every column pairs (the filter is not balanced)."""
    n, m = bits.shape
    if n < 16 or m % 2:
        return None
    rng = np.random.default_rng(seed)
    sample = bits[rng.choice(n, size=min(n, SIGNATURE_ROWS), replace=False)]
    signature = np.packbits(sample, axis=0).T.copy()  # (m, bytes): one key per column
    complement = np.packbits(~sample, axis=0).T.copy()
    index = {row.tobytes(): j for j, row in enumerate(signature)}  # loop over columns, not records
    partner = np.array([index.get(row.tobytes(), -1) for row in complement])
    i = np.flatnonzero((partner > np.arange(m)))
    pairs = np.stack([i, partner[i]], axis=1) if len(i) else np.zeros((0, 2), np.int64)
    if len(pairs) == 0:
        return None
    exact = (bits[:, pairs[:, 0]] != bits[:, pairs[:, 1]]).all(axis=0)
    pairs = pairs[exact]
    return pairs if 2 * len(pairs) >= MIN_PAIRED * m else None


def unbalance(bits: np.ndarray) -> tuple[np.ndarray, bool]:
    """The original bits of a balanced filter (the sparser member of every complementary
    pair), or the input unchanged; and whether balancing was undone."""
    pairs = complement_pairs(bits)
    if pairs is None:
        return bits, False
    mean = bits.mean(axis=0)
    keep = np.where(mean[pairs[:, 0]] <= mean[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    return bits[:, np.sort(keep)], True


def components(n_rows: int, edge_lists: list[np.ndarray]) -> np.ndarray:
    """Union-find over rows: each array gives per row a key (0 = none); rows sharing a
    non-zero key of one array are joined. Returns a component label per row."""
    rows, cols, offset = [], [], n_rows
    for keys in edge_lists:
        has = keys != 0
        if not has.any():
            continue
        _, code = np.unique(keys[has], return_inverse=True)
        rows.append(np.flatnonzero(has))
        cols.append(offset + code)
        offset += int(code.max()) + 1
    if not rows:
        return np.arange(n_rows)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return labels[:n_rows]


def scope_keys(corpus: Corpus, scope: str) -> list[str]:
    """Blocking keys whose token fixes the value of ``scope`` ("field:derivation")."""
    field, _, derivation = scope.partition(":")
    fixing = DETERMINES.get(derivation, frozenset({derivation}))
    present = set(corpus.block_names())
    out = []
    for key in corpus.schema.blocking:
        if key.name not in present:
            continue
        parts = [p.partition(":") for p in key.parts]
        if any(f == field and d in fixing for f, _, d in parts):
            out.append(key.name)
    return out


def salt_groups(corpus: Corpus, scope: str) -> tuple[np.ndarray, list[str]]:
    """Groups of records sharing the value of ``scope``, found from the files alone.

    Returns a label per row (records whose salting field is missing share label -1: they
    share the empty salt) and the blocking keys used.
    """
    if ":" not in scope and scope in corpus.block_names():  # v2: the scope is a blocking key
        token = corpus.tokens(scope)
        labels = np.where(token != 0, pd.factorize(token)[0], -1)
        return labels.astype(np.int64), [scope]
    field = scope.partition(":")[0]
    keys = scope_keys(corpus, scope)
    edges = [corpus.tokens(k) for k in keys]
    missing = np.ones(corpus.rows, bool)
    for group in corpus.groups.get(field, []):
        words = corpus.words(group)
        present = corpus.present(group)
        missing &= ~present
        if group.scope is None:  # an unsalted filter of the salting field: equal value, equal salt
            h = pd.util.hash_pandas_object(pd.DataFrame(words), index=False).to_numpy().astype(np.int64)
            edges.append(np.where(present, h | 1, 0))
    labels = components(corpus.rows, edges)
    if corpus.groups.get(field):
        labels = np.where(missing, -1, labels)
    return labels, keys
