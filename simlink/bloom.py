"""Field-level Bloom filters: keyed bit positions, hardening, and 64-bit word packing.

Bit positions come from HMAC-SHA-256 of each token under the field's key (never an unkeyed
hash), computed once per distinct token and cached. Filters are built for a batch of
distinct values at once as a boolean matrix, hardened, then packed into little-endian
64-bit words stored as signed BIGINT columns, so Dice similarity is a sum of
``bit_count(a_i & b_i)`` in DuckDB or Spark SQL.
"""

from __future__ import annotations

import numpy as np

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
        self._positions: dict[tuple[int, int] | tuple[int, str], np.ndarray] = {}
        # Record-level salting: one keyed hash and position cache per salt value.
        self._salted: dict[str, tuple[KeyedHash, dict]] = {}
        h = spec.hardening
        self._blip_hash = KeyedHash(derive_key(secret, "blip", context)) if h.blip_epsilon > 0 else None
        self._permutation = None
        if h.permute or h.balance:
            seed = int.from_bytes(derive_key(secret, "permute", context)[:8], "big")
            self._permutation = np.random.Generator(np.random.PCG64(seed)).permutation(spec.stored_bits)

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
        """Hash and cache for one salt value (``None`` = unsalted field)."""
        if salt is None:
            return self._hash, self._positions
        state = self._salted.get(salt)
        if state is None:
            keyed = KeyedHash(derive_key(self._secret, "field", f"{self._context}/salt={salt}"))
            state = self._salted[salt] = (keyed, {})
        return state

    def _positions_for(self, tokens: Tokens, salt: str | None = None) -> np.ndarray:
        """(n_tokens, k) bit positions, hashing only tokens not seen before."""
        keyed, cache = self._salt_state(salt)
        k = self.spec.hashes
        if len(tokens.code) == 0:
            return np.zeros((0, k), dtype=np.int64)
        string_token = tokens.strings != ()
        if string_token:
            keys = [(int(t), tokens.strings[c]) for t, c in zip(tokens.tag, tokens.code)]
            uniq = list(dict.fromkeys(keys))
            index = {key: i for i, key in enumerate(uniq)}
            inverse = np.fromiter((index[key] for key in keys), dtype=np.int64, count=len(keys))
        else:
            pairs = np.stack([tokens.tag, tokens.code], axis=1)
            uniq_arr, inverse = np.unique(pairs, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            uniq = [(int(t), int(c)) for t, c in uniq_arr]
        table = np.empty((len(uniq), k), dtype=np.int64)
        for i, key in enumerate(uniq):
            cached = cache.get(key)
            if cached is None:
                tag, code = key
                message = (bytes([tag]) + code.encode("utf-8")) if isinstance(code, str) else token_message(tag, code, ())
                cached = self._token_positions(message, keyed)
                cache[key] = cached
            table[i] = cached
        return table[inverse]

    # -- filters ---------------------------------------------------------------------
    def bit_matrix(self, values: list[str], salts: list[str] | None = None) -> np.ndarray:
        """(n_values, bits) boolean matrix of the unhardened filters.

        With ``salts`` (one per value, for a field with ``salt_derivation``) each value's
        tokens are hashed under a key derived from its salt, so equal values with different
        salts get unrelated filters.
        """
        matrix = np.zeros((len(values), self.spec.bits), dtype=bool)
        if salts is None:
            groups: dict[str | None, list[int]] = {None: list(range(len(values)))}
        else:
            groups = {}
            for i, salt in enumerate(salts):
                groups.setdefault(salt, []).append(i)
        for salt, members in groups.items():
            index = np.asarray(members, dtype=np.int64)
            for tokens in tokenise([values[i] for i in members], self.spec.tokens):
                positions = self._positions_for(tokens, salt)
                rows = np.repeat(index[tokens.value_index], positions.shape[1])
                matrix[rows, positions.reshape(-1)] = True
        return matrix

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
        if self._permutation is not None:
            matrix = matrix[:, self._permutation]
        return matrix

    def encode(self, values: list[str], salts: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Packed words (n, words) int64 and popcounts (n,) int16 for distinct values.

        With salts, ``values[i]`` is encoded under ``salts[i]`` (pairs need not be distinct).
        """
        matrix = self.bit_matrix(values, salts)
        noise_keys = values if salts is None else [f"{v}\x1f{s}" for v, s in zip(values, salts)]
        matrix = self.harden(matrix, noise_keys)
        return pack(matrix), matrix.sum(axis=1).astype(np.int16)


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
