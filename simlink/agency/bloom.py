"""Field-level Bloom filters: keyed bit positions, hardening, and 64-bit word packing.

Bit positions come from HMAC-SHA-256 of each token under the field's key (never an unkeyed
hash), computed once per distinct (salt, token) pair and cached as packed words. A value's
filter is the OR of its tokens' words, computed with numpy for a whole batch of distinct
values (or (value, salt) pairs) at once; hardening that needs the bit matrix (BLIP,
XOR-folding) is applied after. Filters are little-endian 64-bit words stored as signed
BIGINT columns, so Dice similarity is a sum of ``bit_count(a_i & b_i)`` in DuckDB or Spark SQL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simlink.agency.keys import KeyedHash, derive_key
from simlink.schema import FieldSpec
from simlink.agency.tokens import Tokens, token_message, tokenise

_DENSE_LIMIT = 1 << 21  # (salt, token) key spaces up to this size are looked up through a dense map
_PAIR_CACHE_LIMIT = 1_000_000  # cached (salt, token) filters: at most ~128 MB for 1024-bit fields


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fast, well-mixed 64-bit function (public; all its inputs are keyed already)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _dense_codes(tokens: Tokens) -> tuple[np.ndarray, list] | None:
    """Fast factorisation for the common case: one tag, codes of two ASCII characters.

    Bigrams and character-at-position codes are ``high << 21 | low``; when ``low`` is ASCII
    and ``high`` small, ``high * 128 + low`` is a small dense key, counted without hashing.
    """
    code = tokens.code
    if len(code) == 0 or tokens.tag.min() != tokens.tag.max():
        return None
    high, low = code >> 21, code & 0x1FFFFF
    if low.max() >= 128 or high.max() >= 1 << 14 or code.min() < 0:
        return None
    key = high * 128 + low
    present = np.flatnonzero(np.bincount(key))
    lookup = np.empty(int(present[-1]) + 1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    tag = int(tokens.tag[0])
    codes = ((present // 128) << 21) | (present % 128)
    return lookup[key], [(tag, int(c)) for c in codes.tolist()]


def _as_pairs(values: list[str], salts: list[str] | None) -> tuple:
    """(distinct values, value index per pair, salt index per pair, salt names) for the pair
    encoders; without salts every value is its own pair under the field's key."""
    if salts is None:
        return values, np.arange(len(values), dtype=np.int64), None, None
    pair_value, distinct = pd.factorize(pd.Series(values, dtype=object), sort=False)
    pair_salt, salt_names = pd.factorize(pd.Series(salts, dtype=object), sort=False)
    return ([str(v) for v in distinct], pair_value.astype(np.int64),
            pair_salt.astype(np.int64), [str(s) for s in salt_names])


class FieldEncoder:
    """Encodes batches of distinct normalised values of one field into packed filters.

    Holds the token and (salt, token) word caches across batches, so a long file hashes
    each distinct (salt, token) pair only once.
    """

    def __init__(self, spec: FieldSpec, secret: bytes, fingerprint: str) -> None:
        self.spec = spec
        context = f"{fingerprint}/{spec.name}"
        self._secret, self._context = secret, context
        self._hash = KeyedHash(derive_key(secret, "field", context))
        # Caches across chunks: token (tag, code) -> id and its hashed message; salt -> id and
        # its keyed hash (record-level salting: one key per salt value); and the words of each
        # (salt id, token id) pair: sorted int64 keys, their columns in a (words, n) table.
        self._token_index: dict[tuple[int, int] | tuple[int, str], int] = {}
        self._token_messages: list[bytes] = []
        self._salt_ids: dict[str | None, int] = {}
        self._salt_hashes: list[KeyedHash] = []
        self._cache_keys = np.zeros(0, dtype=np.int64)  # sorted
        self._cache_rows = np.zeros(0, dtype=np.int64)  # column of _pair_words for each key
        h = spec.hardening
        # BLIP and XOR-folding work on the bit matrix. Permutation and balancing are folded
        # into each token's words instead (same result, see _pair_rows), which keeps the
        # fast word-OR path.
        self._needs_bits = h.blip_epsilon > 0 or h.xor_fold
        self._blip_hash = KeyedHash(derive_key(secret, "blip", context)) if h.blip_epsilon > 0 else None
        self._permutation = None
        if h.permute or h.balance:
            seed = int.from_bytes(derive_key(secret, "permute", context)[:8], "big")
            self._permutation = np.random.Generator(np.random.PCG64(seed)).permutation(spec.stored_bits)
            # harden() moves bit perm[i] to slot i; the word path places bit j at destination[j].
            self._destination = np.argsort(self._permutation)
        if h.balance and not self._needs_bits:
            complement = np.zeros(spec.stored_bits, dtype=bool)
            complement[self._destination[spec.bits:]] = True
            self._complement_mask = pack(complement[None, :])[0].view(np.uint64)
        width = (spec.bits if self._needs_bits else spec.stored_bits) // 64
        self._pair_words = np.zeros((width, 0), dtype=np.uint64)

    # -- keyed positions -------------------------------------------------------------
    def _positions(self, messages: list[bytes], keyed: KeyedHash) -> np.ndarray:
        """(len(messages), k) bit positions of tokens: one HMAC stream per token."""
        bits, k = self.spec.bits, self.spec.hashes
        digest = keyed.digest
        if self.spec.hashing == "double":
            # (h1 + i*h2) mod bits computed on residues: equal to the exact big-integer form.
            stream = b"".join([digest(m) for m in messages])
            halves = np.frombuffer(stream, dtype=">u8").reshape(len(messages), 4)[:, :2]
            h1 = (halves[:, 0] % np.uint64(bits)).astype(np.int64)
            h2 = ((halves[:, 1] | np.uint64(1)) % np.uint64(bits)).astype(np.int64)
            return (h1[:, None] + np.arange(k, dtype=np.int64)[None, :] * h2[:, None]) % bits
        blocks = -(-4 * k // 32)  # 8 positions per HMAC block
        suffixes = [bytes([0xFF, counter]) for counter in range(blocks)]
        stream = b"".join([digest(m + suffix) for m in messages for suffix in suffixes])
        words = np.frombuffer(stream, dtype=">u4").reshape(len(messages), 8 * blocks)[:, :k]
        return words.astype(np.int64) % bits

    def _salt_id(self, salt: str | None) -> int:
        """Small integer for a salt value (``None`` = unsalted field), with its keyed hash."""
        known = self._salt_ids.get(salt)
        if known is None:
            if salt is None:
                keyed = self._hash
            else:
                keyed = KeyedHash(derive_key(self._secret, "field", f"{self._context}/salt={salt}"))
            known = self._salt_ids[salt] = len(self._salt_hashes)
            self._salt_hashes.append(keyed)
        return known

    def _token_ids(self, tokens: Tokens) -> np.ndarray:
        """Per token, a small integer id that stands for its (tag, code) across chunks."""
        inverse, keys = self._token_keys(tokens)
        ids = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            known = self._token_index.get(key)
            if known is None:
                known = self._token_index[key] = len(self._token_messages)
                self._token_messages.append(token_message(*key))
            ids[i] = known
        return ids[inverse]

    def _token_keys(self, tokens: Tokens) -> tuple[np.ndarray, list]:
        """Factorise tokens into (inverse index, distinct (tag, code) keys) without sorting."""
        if tokens.strings:
            labels = [tokens.strings[c] for c in tokens.code]
            inverse, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
            tag = int(tokens.tag[0]) if len(tokens.tag) else 0
            return inverse.astype(np.int64), [(tag, str(u)) for u in uniques]
        dense = _dense_codes(tokens)
        if dense is not None:
            return dense
        # Codes fit in 63 bits for q <= 3 only when the tag is constant; date parts
        # (the only mixed-tag group) have small codes, so tag and code pack into one key.
        if len(tokens.tag) and tokens.tag.min() != tokens.tag.max():
            combined = (tokens.tag << 40) | tokens.code
        else:
            combined = tokens.code
        inverse, uniques = pd.factorize(combined, sort=False)
        if len(tokens.tag) and tokens.tag.min() != tokens.tag.max():
            keys = [(int(u) >> 40, int(u) & ((1 << 40) - 1)) for u in uniques]
        else:
            tag = int(tokens.tag[0]) if len(tokens.tag) else 0
            keys = [(tag, int(u)) for u in uniques]
        return inverse.astype(np.int64), keys

    def _pair_rows(self, pair_keys: np.ndarray) -> np.ndarray:
        """Rows of the cached word table for distinct (salt id << 32 | token id) keys.

        Keys not cached yet are hashed (one HMAC stream each, grouped by salt) and their
        words appended; lookups are a vectorised binary search over the sorted cached keys.
        """
        cached = len(self._cache_keys)
        rows = np.full(len(pair_keys), -1, dtype=np.int64)
        if cached:
            at = np.minimum(np.searchsorted(self._cache_keys, pair_keys), cached - 1)
            hit = self._cache_keys[at] == pair_keys
            rows[hit] = self._cache_rows[at[hit]]
        missing = np.flatnonzero(rows < 0)
        if len(missing) == 0:
            return rows
        if cached and cached + len(missing) > _PAIR_CACHE_LIMIT:
            # Bound memory when new (salt, token) pairs keep coming: start the cache afresh.
            self._cache_keys, self._cache_rows = self._cache_keys[:0], self._cache_rows[:0]
            self._pair_words = self._pair_words[:, :0]
            return self._pair_rows(pair_keys)
        new_keys = pair_keys[missing]
        positions = np.empty((len(new_keys), self.spec.hashes), dtype=np.int64)
        salt_of, token_of = new_keys >> 32, new_keys & 0xFFFFFFFF
        order = np.argsort(salt_of, kind="stable")
        bounds = np.flatnonzero(np.diff(salt_of[order])) + 1
        messages = self._token_messages
        for chunk in np.split(order, bounds):
            keyed = self._salt_hashes[int(salt_of[chunk[0]])]
            positions[chunk] = self._positions([messages[t] for t in token_of[chunk].tolist()], keyed)
        width = self.spec.bits
        if not self._needs_bits and self.spec.hardening.balance:
            # Balanced then permuted: bit p lands at perm[p] and its complement slot
            # perm[bits + p]; the complement half is flipped once per value (see encode).
            positions = np.concatenate([positions, positions + self.spec.bits], axis=1)
            width = self.spec.stored_bits
        if self._permutation is not None and not self._needs_bits:
            positions = self._destination[positions]
        words = np.zeros((width // 64, len(new_keys)), dtype=np.uint64)
        owner = np.repeat(np.arange(len(new_keys)), positions.shape[1])
        flat = positions.reshape(-1)
        np.bitwise_or.at(words, (flat // 64, owner), np.left_shift(np.uint64(1), (flat % 64).astype(np.uint64)))
        new_rows = np.arange(self._pair_words.shape[1], self._pair_words.shape[1] + len(new_keys))
        self._pair_words = np.concatenate([self._pair_words, words], axis=1)
        keys = np.concatenate([self._cache_keys, new_keys])
        order = np.argsort(keys, kind="stable")
        self._cache_keys, self._cache_rows = keys[order], np.concatenate([self._cache_rows, new_rows])[order]
        rows[missing] = new_rows
        return rows

    def pair_words(self, values, pair_value: np.ndarray, pair_salt: np.ndarray | None = None,
                   salt_names: list[str] | None = None) -> np.ndarray:
        """(n_pairs, width/64) uint64 unhardened (or balanced-and-permuted) filter words.

        Pair i is ``values[pair_value[i]]`` hashed under salt ``salt_names[pair_salt[i]]``
        (no salts: the field's own key). Values are tokenised once whatever their salts; each
        pair's words are the OR of the cached words of its (salt, token) keys.
        """
        width = (self.spec.bits if self._needs_bits else self.spec.stored_bits) // 64
        n_pairs = len(pair_value)
        out = np.zeros((n_pairs, width), dtype=np.uint64)
        if n_pairs == 0:
            return out
        if pair_salt is None:
            salt_ids, pair_salt = np.full(1, self._salt_id(None), dtype=np.int64), np.zeros(n_pairs, np.int64)
        else:
            salt_ids = np.array([self._salt_id(s) for s in salt_names], dtype=np.int64)
        one_pair_per_value = n_pairs == len(values) and bool((pair_value == np.arange(n_pairs)).all())
        for group in tokenise(values, self.spec.tokens):
            if len(group.code) == 0:
                continue
            token = self._token_ids(group)
            if one_pair_per_value:  # tokens are already in pair order
                element_pair, element_token = group.value_index, token
                per_pair = np.bincount(element_pair, minlength=n_pairs)
            else:  # ragged gather: each pair's value's tokens, pairs one after another
                per_value = np.bincount(group.value_index, minlength=len(values))
                value_start = np.cumsum(per_value) - per_value
                per_pair = per_value[pair_value]
                element_pair = np.repeat(np.arange(n_pairs), per_pair)
                within = np.arange(len(element_pair)) - (np.cumsum(per_pair) - per_pair)[element_pair]
                element_token = token[value_start[pair_value][element_pair] + within]
            element_row = self._element_rows(salt_ids, pair_salt[element_pair], element_token)
            # Reduce over the pairs that have tokens of this group only: their starts are strictly
            # increasing and in range, so each segment is exactly that pair's tokens, whatever
            # the other values of the batch (a value's filter must not depend on its chunk).
            has_tokens = per_pair > 0
            starts = (np.cumsum(per_pair) - per_pair)[has_tokens]
            for w in range(width):
                out[has_tokens, w] |= np.bitwise_or.reduceat(self._pair_words[w][element_row], starts)
        return out

    def _element_rows(self, salt_ids: np.ndarray, element_salt: np.ndarray, element_token: np.ndarray) -> np.ndarray:
        """Word-table row of each (salt, token) element; distinct keys looked up once."""
        n_tokens = len(self._token_messages)
        if len(salt_ids) * n_tokens <= _DENSE_LIMIT:  # small key space: dense map, no hashing
            local = element_salt * n_tokens + element_token
            distinct = np.flatnonzero(np.bincount(local, minlength=len(salt_ids) * n_tokens))
            lookup = np.full(len(salt_ids) * n_tokens, -1, dtype=np.int64)
            lookup[distinct] = self._pair_rows((salt_ids[distinct // n_tokens] << 32) | (distinct % n_tokens))
            return lookup[local]
        inverse, distinct = pd.factorize((salt_ids[element_salt] << 32) | element_token, sort=False)
        return self._pair_rows(distinct)[inverse]

    def unhardened_words(self, values: list[str], salts: list[str] | None = None) -> np.ndarray:
        """(n_values, bits/64) uint64: OR of the cached words of each value's tokens.

        With ``salts`` (one per value, for a field with ``salt_derivation``) each value's
        tokens are hashed under a key derived from its salt, so equal values with different
        salts get unrelated filters. Values are tokenised once whatever their salts.
        """
        return self.pair_words(*_as_pairs(values, salts))

    def bit_matrix(self, values: list[str], salts: list[str] | None = None) -> np.ndarray:
        """(n_values, bits) boolean matrix of the unhardened filters."""
        return unpack(self.unhardened_words(values, salts).view(np.int64))

    def harden(self, matrix: np.ndarray, values: list[str]) -> np.ndarray:
        """Apply the field's hardening, in a fixed order: BLIP, XOR-fold, balance, permute."""
        h = self.spec.hardening
        if self._blip_hash is not None and len(values):
            flip_probability = 1.0 / (1.0 + np.exp(h.blip_epsilon))
            # A keyed seed per value makes the noise deterministic: equal values still give
            # equal filters (needed to collapse repeat contacts), unequal ones differ.
            seeds = np.array(
                [int.from_bytes(self._blip_hash.digest(v.encode("utf-8"))[:8], "big") for v in values],
                dtype=np.uint64,
            )
            cols = np.arange(matrix.shape[1], dtype=np.uint64)
            with np.errstate(over="ignore"):
                mixed = _splitmix64(seeds[:, None] ^ (cols[None, :] * np.uint64(0xD6E8FEB86659FD93)))
            uniform = (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
            matrix = matrix ^ (uniform < flip_probability)
        if h.xor_fold:
            half = matrix.shape[1] // 2
            matrix = matrix[:, :half] ^ matrix[:, half:]
        if h.balance:
            matrix = np.concatenate([matrix, ~matrix], axis=1)
        if self._permutation is not None and self._needs_bits:
            matrix = matrix[:, self._permutation]
        return matrix

    def encode(self, values: list[str], salts: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Packed words (n, words) int64 and popcounts (n,) int16 for distinct values.

        With salts, ``values[i]`` is encoded under ``salts[i]`` (pairs need not be distinct).
        """
        return self.encode_pairs(*_as_pairs(values, salts))

    def encode_pairs(self, values, pair_value: np.ndarray, pair_salt: np.ndarray | None = None,
                     salt_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Hardened words (n_pairs, words) int64 and popcounts for (value, salt) pairs.

        ``values``: distinct normalised values (list or Arrow string array); see
        :meth:`pair_words` for the pairs.
        """
        if self._needs_bits:
            listed = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
            pair_values = [listed[i] for i in pair_value.tolist()]
            if pair_salt is None:
                noise_keys = pair_values
            else:
                noise_keys = [f"{v}\x1f{salt_names[s]}" for v, s in zip(pair_values, pair_salt.tolist())]
            unhardened = self.pair_words(values, pair_value, pair_salt, salt_names)
            words = pack(self.harden(unpack(unhardened.view(np.int64)), noise_keys))
        else:  # permutation and balancing (if any) are already in the token words
            words = self.pair_words(values, pair_value, pair_salt, salt_names)
            if self.spec.hardening.balance:
                words ^= self._complement_mask
            words = words.view(np.int64)
        pops = np.bitwise_count(words.view(np.uint64)).sum(axis=1, dtype=np.int64).astype(np.int16)
        return words, pops


def pack(matrix: np.ndarray) -> np.ndarray:
    """Boolean (n, bits) → (n, bits/64) int64 words; bit j is bit j%64 of word j//64."""
    if matrix.shape[0] == 0:
        return np.zeros((0, matrix.shape[1] // 64), dtype=np.int64)
    packed = np.packbits(matrix, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<i8").reshape(matrix.shape[0], -1)


def unpack(words: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack` (used by the audit and tests)."""
    words = np.ascontiguousarray(words, dtype="<i8")
    as_bytes = words.view(np.uint8).reshape(words.shape[0], words.shape[1] * 8)  # also for 0 rows
    return np.unpackbits(as_bytes, axis=1, bitorder="little").astype(bool)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean filters (0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 0.0
