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

from simlink.agency.keyed import BatchPRF, TokenIds, plain_blocks
from simlink.agency.keys import derive_key
from simlink.agency.tokens import tokenise
from simlink.schema import FieldSpec

_CHUNK_PAIRS = 1 << 14  # pairs encoded per step: the AES buffers stay about 1 MB (in cache)
_TOKEN_SHIFT = np.uint64(56)  # block number position in the second 64-bit half of a block


def _value_tokens(values: pa.Array | list[str], spec: FieldSpec, ids: TokenIds) -> tuple[np.ndarray, np.ndarray]:
    """CSR form of each distinct value's token ids: (offsets of length n + 1, ids).

    A value's tokens are its groups' tokens in group order (q-grams, then phonetic codes).
    Every tokeniser lists its tokens by value, so each group is placed straight into the CSR
    array (no sort over all tokens).
    """
    n = len(values)
    groups = tokenise(values, spec.tokens)
    counts = [np.bincount(g.value_index, minlength=n) for g in groups]
    total = np.sum(counts, axis=0) if counts else np.zeros(n, np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(total, out=offsets[1:])
    token = np.empty(int(offsets[-1]), dtype=np.uint64)
    base = offsets[:-1].copy()
    for group, count in zip(groups, counts):
        owner = group.value_index
        if len(owner) == 0:
            continue
        if (np.diff(owner) < 0).any():  # not listed by value: order it (stable keeps token order)
            order = np.argsort(owner, kind="stable")
            group_ids, owner = ids(group)[order], owner[order]
        else:
            group_ids = ids(group)
        first_of_owner = np.cumsum(count) - count  # where each value's run starts in this group
        token[base[owner] + np.arange(len(owner)) - first_of_owner[owner]] = group_ids
        base += count
    return offsets, token


class FieldTokens:
    """Token ids of a field's distinct values, computed once per chunk for all its copies."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self._ids = TokenIds()  # cached across chunks: a field has few distinct tokens
        self._values: object = None
        self._csr: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, values: pa.Array | list[str]) -> tuple[np.ndarray, np.ndarray]:
        if values is not self._values or self._csr is None:
            self._csr = _value_tokens(values, self.spec, self._ids)
            self._values = values
        return self._csr


def _slots(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ordered by token count, most first, and per slot j the number of pairs with a
    j-th token: slot j's pairs are then a prefix of that order, so the j-th tokens of all
    pairs are hashed in one call and folded into the result with contiguous slices."""
    small = np.int16 if len(counts) == 0 or counts.max() < 1 << 15 else np.int32  # 16-bit keys: radix sort
    order = np.argsort(-counts.astype(small), kind="stable")
    ordered = counts[order]
    live = int(np.count_nonzero(ordered))
    if live == 0:
        return order[:0], np.zeros(0, np.int64)
    per_slot = np.searchsorted(-ordered[:live], -np.arange(int(ordered[0]), dtype=np.int64), side="left")
    return order[:live], per_slot


class CopyEncoder:
    """Encodes (value, scope salt) pairs of one field copy into packed 64-bit words."""

    def __init__(self, spec: FieldSpec, scope: str, secret: bytes, fingerprint: str,
                 tokens: FieldTokens | None = None) -> None:
        self.spec, self.scope = spec, scope
        self._prf = BatchPRF(derive_key(secret, "filter-v2", f"{fingerprint}/{spec.name}/{scope}"))
        self._tokens = tokens if tokens is not None else FieldTokens(spec)

    def encode_pairs(self, values: pa.Array | list[str], pair_value: np.ndarray,
                     pair_salt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_pairs, words) int64 filter words and int16 popcounts; ``pair_salt`` is uint64."""
        offsets, token = self._tokens(values)
        n_pairs = len(pair_value)
        words = np.zeros((n_pairs, self.spec.words), dtype=np.int64)
        if n_pairs == 0:
            return words, np.zeros(0, dtype=np.int16)
        pair_value = np.asarray(pair_value, dtype=np.int64)
        salts = np.asarray(pair_salt, dtype=np.uint64)
        first = offsets[pair_value]
        counts = offsets[pair_value + 1] - first
        fold = self._minhash if self.spec.encoding == "minhash" else self._bloom
        for start in range(0, n_pairs, _CHUNK_PAIRS):
            stop = min(start + _CHUNK_PAIRS, n_pairs)
            order, per_slot = _slots(counts[start:stop])
            if len(order):  # pairs without tokens keep the empty filter
                words[start + order] = fold(first[start:stop][order], salts[start:stop][order], per_slot, token)
        pops = np.bitwise_count(words.view(np.uint64)).sum(axis=1).astype(np.int16)
        return words, pops

    def _slot_bytes(self, first: np.ndarray, salts: np.ndarray, per_slot: np.ndarray, token: np.ndarray,
                    blocks: int):
        """Yield (j, AES bytes (pairs with a j-th token, 16 * blocks)) slot by slot."""
        counters = np.arange(blocks, dtype=np.uint64) << _TOKEN_SHIFT
        plain = np.empty((len(first), blocks, 2), dtype=np.uint64)
        cipher = np.empty(plain.nbytes + 15, dtype=np.uint8)
        for j, m in enumerate(per_slot.tolist()):
            plain_blocks(salts[:m], token[first[:m] + j], counters, plain[:m])
            yield j, self._prf.encrypt(plain[:m], cipher).reshape(m, 16 * blocks)

    def _bloom(self, first: np.ndarray, salts: np.ndarray, per_slot: np.ndarray, token: np.ndarray) -> np.ndarray:
        """k keyed positions per token (16-bit draws mod bits), OR-ed over the pair's tokens.

        Bits are set in a byte matrix (bit p is bit p % 8 of byte p // 8, i.e. little-endian
        words), one hash at a time so that no byte repeats within one assignment.
        """
        k, bits = self.spec.hashes, self.spec.bits
        row_bytes = bits // 8
        acc = np.zeros(len(first) * row_bytes, dtype=np.uint8)
        rows = np.arange(len(first), dtype=np.int64) * row_bytes
        for _, raw in self._slot_bytes(first, salts, per_slot, token, (k + 7) // 8):
            draws = np.ascontiguousarray(raw.view(np.uint16)[:, :k].T)  # (k, pairs): rows are contiguous
            positions = draws & np.uint16(bits - 1) if bits & (bits - 1) == 0 else draws % np.uint16(bits)
            index = rows[None, : len(raw)] + (positions >> np.uint16(3))
            bit = np.left_shift(np.uint8(1), (positions & np.uint16(7)).astype(np.uint8))
            for i in range(k):
                acc[index[i]] |= bit[i]
        return acc.view("<u8").reshape(len(first), bits // 64).view(np.int64)

    def _minhash(self, first: np.ndarray, salts: np.ndarray, per_slot: np.ndarray, token: np.ndarray) -> np.ndarray:
        """Per segment the minimum byte over the pair's tokens, stored one-hot (its low bits)."""
        segments, bits = self.spec.segments, self.spec.bits
        width = bits // segments
        mins = np.empty((len(first), segments), dtype=np.uint8)
        for j, raw in self._slot_bytes(first, salts, per_slot, token, (segments + 15) // 16):
            if j == 0:
                mins[:] = raw[:, :segments]
            else:
                np.minimum(mins[: len(raw)], raw[:, :segments], out=mins[: len(raw)])
        low = mins & np.uint8(width - 1)
        if width == 8:  # one segment per byte: the byte is the one-hot value itself
            return np.left_shift(np.uint8(1), low).view("<u8").view(np.int64)
        shift = (np.arange(segments, dtype=np.uint64) * np.uint64(width)) % np.uint64(64)
        onehot = np.uint64(1) << (shift[None, :] + low.astype(np.uint64))
        per_word = 64 // width
        return onehot.reshape(len(first), segments // per_word, per_word).sum(axis=2, dtype=np.uint64).view(np.int64)
