"""Format-2 filter copies: a field's tokens hashed under a scope value's salt.

A *copy* of a field is salted by the record's value of one blocking key (its scope, e.g. the
full date of birth): two copies are comparable only inside one scope value, and the same
name under another scope value gives an unrelated bit pattern. So the linkage unit can tell
that two records with the same date of birth have similar names, but it cannot gather
everyone called Smith: there is no name-level group to count.

Two encodings:

* ``bloom``: k keyed positions per token, OR-ed (Dice similarity); its popcount grows with
  the number of tokens, i.e. the length of the value. Used for dates and postcodes, whose
  lengths are constant.
* ``minhash``: a keyed MinHash signature stored one-hot: the filter is cut into ``segments``
  of ``w`` bits and each segment has exactly one bit set, at ``min over tokens of h_s(token)
  mod w``. Every value has the same popcount (``segments``), so a filter does not tell how
  long the name is, and the share of agreeing segments estimates the Jaccard similarity of
  the two token sets (plus 1/w agreement by chance). Used for names.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simlink.agency.keyed import BatchPRF, TokenIds
from simlink.agency.keys import derive_key
from simlink.agency.tokens import tokenise
from simlink.schema import FieldSpec

_CHUNK_ELEMENTS = 1 << 20  # (pair, token) elements hashed per AES call: bounds memory


def _value_tokens(values: pa.Array | list[str], spec: FieldSpec, ids: TokenIds) -> tuple[np.ndarray, np.ndarray]:
    """CSR form of each distinct value's token ids: (offsets of length n + 1, ids)."""
    n = len(values)
    groups = tokenise(values, spec.tokens)
    owner = np.concatenate([g.value_index for g in groups]) if groups else np.zeros(0, np.int64)
    token = np.concatenate([ids(g) for g in groups]) if groups else np.zeros(0, np.uint64)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n) if len(owner) else np.zeros(n, np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, token[order]


def _elements(pair_value: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pair, the positions of its value's tokens: (pair of element, token index)."""
    counts = offsets[pair_value + 1] - offsets[pair_value]
    pair_of = np.repeat(np.arange(len(pair_value), dtype=np.int64), counts)
    starts = np.repeat(offsets[pair_value] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return pair_of, starts + np.arange(len(pair_of), dtype=np.int64)


_PAD_TOKENS = 16  # values with at most this many tokens take the padded (fast) minimum


def _segment_min(raw: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Row-wise minimum of each run of rows of ``raw`` beginning at ``starts``.

    ``np.minimum.reduceat`` along rows is slow on many short runs; runs of up to
    _PAD_TOKENS rows (nearly every name) are copied into a padded block and reduced at
    once, longer runs go through reduceat.
    """
    counts = np.diff(np.r_[starts, len(raw)])
    out = np.empty((len(starts), raw.shape[1]), dtype=raw.dtype)
    short = counts <= _PAD_TOKENS
    if short.any():
        idx = np.flatnonzero(short)
        block = np.full((len(idx), _PAD_TOKENS, raw.shape[1]), np.iinfo(raw.dtype).max, dtype=raw.dtype)
        run = np.repeat(np.arange(len(idx)), counts[idx])
        offset = np.arange(len(run)) - np.repeat(np.cumsum(counts[idx]) - counts[idx], counts[idx])
        block[run, offset] = raw[np.repeat(starts[idx], counts[idx]) + offset]
        out[idx] = block.min(axis=1)
    if (~short).any():
        idx = np.flatnonzero(~short)
        rows = np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in idx])
        out[idx] = np.minimum.reduceat(raw[rows], np.r_[0, np.cumsum(counts[idx])[:-1]], axis=0)
    return out


class CopyEncoder:
    """Encodes (value, scope salt) pairs of one field copy into packed 64-bit words."""

    def __init__(self, spec: FieldSpec, scope: str, secret: bytes, fingerprint: str) -> None:
        self.spec, self.scope = spec, scope
        self._prf = BatchPRF(derive_key(secret, "filter-v2", f"{fingerprint}/{spec.name}/{scope}"))
        self._ids = TokenIds()

    def encode_pairs(self, values: pa.Array | list[str], pair_value: np.ndarray,
                     pair_salt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_pairs, words) int64 filter words and int16 popcounts; ``pair_salt`` is uint64."""
        offsets, token = _value_tokens(values, self.spec, self._ids)
        n_pairs = len(pair_value)
        words = np.zeros((n_pairs, self.spec.words), dtype=np.int64)
        if n_pairs == 0:
            return words, np.zeros(0, dtype=np.int16)
        per_pair = offsets[pair_value + 1] - offsets[pair_value]
        # Pairs in chunks of about _CHUNK_ELEMENTS tokens each.
        bounds = np.searchsorted(np.cumsum(per_pair), np.arange(_CHUNK_ELEMENTS, per_pair.sum() + _CHUNK_ELEMENTS,
                                                                 _CHUNK_ELEMENTS), side="right")
        start = 0
        for stop in list(bounds) + [n_pairs]:
            if stop <= start:
                continue
            pv = pair_value[start:stop]
            pair_of, element = _elements(pv, offsets)
            salts = np.asarray(pair_salt[start:stop], dtype=np.uint64)[pair_of]
            if self.spec.encoding == "minhash":
                words[start:stop] = self._minhash(pair_of, salts, token[element], stop - start)
            else:
                words[start:stop] = self._bloom(pair_of, salts, token[element], stop - start)
            start = stop
        pops = np.bitwise_count(words.view(np.uint64)).sum(axis=1).astype(np.int16)
        return words, pops

    def _bloom(self, pair_of: np.ndarray, salts: np.ndarray, token: np.ndarray, n: int) -> np.ndarray:
        k, bits = self.spec.hashes, self.spec.bits
        raw = self._prf(salts, token, blocks=(k + 7) // 8).view(np.uint16)[:, :k]
        positions = raw.astype(np.int64) % bits
        matrix = np.zeros((n, bits), dtype=np.uint8)
        matrix[np.repeat(pair_of, k), positions.reshape(-1)] = 1
        return np.packbits(matrix, axis=1, bitorder="little").view("<u8").astype(np.int64, copy=False)

    def _minhash(self, pair_of: np.ndarray, salts: np.ndarray, token: np.ndarray, n: int) -> np.ndarray:
        segments, bits = self.spec.segments, self.spec.bits
        width = bits // segments
        raw = self._prf(salts, token, blocks=(segments + 15) // 16)[:, :segments]
        out = np.zeros((n, bits // 64), dtype=np.int64)  # a value without tokens keeps an empty filter
        if len(pair_of) == 0:
            return out
        starts = np.flatnonzero(np.r_[True, pair_of[1:] != pair_of[:-1]])
        mins = _segment_min(raw, starts)
        shift = (np.arange(segments, dtype=np.uint64) * np.uint64(width)) % np.uint64(64)
        onehot = np.uint64(1) << (shift[None, :] + (mins & np.uint8(width - 1)).astype(np.uint64))
        per_word = 64 // width
        packed = onehot.reshape(len(starts), segments // per_word, per_word).sum(axis=2, dtype=np.uint64)
        out[pair_of[starts]] = packed.view(np.int64)
        return out
