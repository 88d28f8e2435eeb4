"""Field-level Bloom filters: keyed bit positions, hardening, and 64-bit word packing.

Bit positions come from HMAC-SHA-256 of each token under the field's key (never an unkeyed
hash), computed once per distinct token and cached. Filters are built for a batch of
distinct values at once as a boolean matrix, hardened, then packed into little-endian
64-bit words stored as signed BIGINT columns, so Dice similarity is a sum of
``bit_count(a_i & b_i)`` in DuckDB or Spark SQL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simlink.keys import KeyedHash, derive_key
from simlink.schema import FieldSpec
from simlink.tokens import Tokens, token_message, tokenise

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fast, well-mixed 64-bit function (public; all its inputs are keyed already)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class FieldEncoder:
    """Encodes batches of distinct normalised values of one field into packed filters.

    Holds the per-token position cache across batches, so a long file hashes each
    distinct token only once.
    """

    def __init__(self, spec: FieldSpec, secret: bytes, fingerprint: str) -> None:
        self.spec = spec
        context = f"{fingerprint}/{spec.name}"
        self._secret, self._context = secret, context
        self._hash = KeyedHash(derive_key(secret, "field", context))
        self._words_cache: dict[tuple[int, int] | tuple[int, str], np.ndarray] = {}
        # Record-level salting: one keyed hash and token cache per salt value.
        self._salted: dict[str, tuple[KeyedHash, dict]] = {}
        h = spec.hardening
        # BLIP and XOR-folding work on the bit matrix. Permutation and balancing are folded
        # into each token's words instead (same result, see _token_table), which keeps the
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

    # -- keyed positions -------------------------------------------------------------
    def _token_positions(self, message: bytes, keyed: KeyedHash) -> np.ndarray:
        bits, k = self.spec.bits, self.spec.hashes
        if self.spec.hashing == "double":
            digest = keyed.digest(message)
            h1 = int.from_bytes(digest[:8], "big")
            h2 = int.from_bytes(digest[8:16], "big") | 1
            return np.array([(h1 + i * h2) % bits for i in range(k)], dtype=np.int64)
        stream = b""
        counter = 0
        while len(stream) < 4 * k:  # 8 positions per HMAC block
            stream += keyed.digest(message + bytes([0xFF, counter]))
            counter += 1
        words = np.frombuffer(stream[: 4 * k], dtype=">u4").astype(np.int64)
        return words % bits

    def _salt_state(self, salt: str | None) -> tuple[KeyedHash, dict]:
        """Hash and token cache for one salt value (``None`` = unsalted field)."""
        if salt is None:
            return self._hash, self._words_cache
        state = self._salted.get(salt)
        if state is None:
            keyed = KeyedHash(derive_key(self._secret, "field", f"{self._context}/salt={salt}"))
            state = self._salted[salt] = (keyed, {})
        return state

    def _token_keys(self, tokens: Tokens) -> tuple[np.ndarray, list]:
        """Factorise tokens into (inverse index, distinct cache keys) without sorting."""
        if tokens.strings:
            labels = [tokens.strings[c] for c in tokens.code]
            inverse, uniques = pd.factorize(pd.Series(labels, dtype=object), sort=False)
            tag = int(tokens.tag[0]) if len(tokens.tag) else 0
            return inverse.astype(np.int64), [(tag, str(u)) for u in uniques]
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

    def _token_table(self, keys: list, keyed: KeyedHash, cache: dict) -> np.ndarray:
        """(len(keys), bits/64) packed words of single tokens (their k bits), cached per token.

        Tokens not seen before are hashed (one HMAC stream each) and packed in one batch.
        """
        missing = [key for key in keys if key not in cache]
        if missing:
            positions = np.empty((len(missing), self.spec.hashes), dtype=np.int64)
            for i, (tag, code) in enumerate(missing):
                positions[i] = self._token_positions(token_message(tag, code), keyed)
            width = self.spec.bits
            if not self._needs_bits and self.spec.hardening.balance:
                # Balanced then permuted: bit p lands at perm[p] and its complement slot
                # perm[bits + p]; the complement half is flipped once per value (see encode).
                positions = np.concatenate([positions, positions + self.spec.bits], axis=1)
                width = self.spec.stored_bits
            if self._permutation is not None and not self._needs_bits:
                positions = self._destination[positions]
            rows = np.zeros((len(missing), width), dtype=bool)
            rows[np.repeat(np.arange(len(missing)), positions.shape[1]), positions.reshape(-1)] = True
            for key, words in zip(missing, pack(rows).view(np.uint64)):
                cache[key] = words
        return np.stack([cache[key] for key in keys])

    def unhardened_words(self, values: list[str], salts: list[str] | None = None) -> np.ndarray:
        """(n_values, bits/64) uint64: OR of the cached words of each value's tokens.

        With ``salts`` (one per value, for a field with ``salt_derivation``) each value's
        tokens are hashed under a key derived from its salt, so equal values with different
        salts get unrelated filters. Values are tokenised once whatever their salts.
        """
        n = len(values)
        width = (self.spec.bits if self._needs_bits else self.spec.stored_bits) // 64
        out = np.zeros((n, width), dtype=np.uint64)
        if salts is not None:
            salt_of_value, salt_names = pd.factorize(pd.Series(salts, dtype=object), sort=False)
        for tokens in tokenise(values, self.spec.tokens):
            if len(tokens.code) == 0:
                continue
            inverse, keys = self._token_keys(tokens)
            if salts is None:
                per_token = self._token_table(keys, *self._salt_state(None))[inverse]
            else:
                token_salt = salt_of_value[tokens.value_index].astype(np.int64)
                pair_inverse, pairs = pd.factorize(token_salt * len(keys) + inverse, sort=False)
                table = np.empty((len(pairs), width), dtype=np.uint64)
                pair_salt, pair_key = pairs // len(keys), pairs % len(keys)
                for salt in np.unique(pair_salt):
                    rows = np.flatnonzero(pair_salt == salt)
                    state = self._salt_state(str(salt_names[salt]))
                    table[rows] = self._token_table([keys[k] for k in pair_key[rows]], *state)
                per_token = table[pair_inverse]
            owners = tokens.value_index  # non-decreasing within a token group
            starts = np.searchsorted(owners, np.arange(n))
            has_tokens = np.bincount(owners, minlength=n) > 0
            reduced = np.bitwise_or.reduceat(per_token, np.minimum(starts, len(owners) - 1), axis=0)
            out |= np.where(has_tokens[:, None], reduced, np.uint64(0))
        return out

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
        if self._needs_bits:
            noise_keys = values if salts is None else [f"{v}\x1f{s}" for v, s in zip(values, salts)]
            words = pack(self.harden(self.bit_matrix(values, salts), noise_keys))
        else:  # permutation and balancing (if any) are already in the token words
            words = self.unhardened_words(values, salts)
            if self.spec.hardening.balance:
                words = words ^ self._complement_mask
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
    return np.unpackbits(words.view(np.uint8).reshape(words.shape[0], -1), axis=1, bitorder="little").astype(bool)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean filters (0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 0.0
