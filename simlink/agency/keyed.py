"""Keyed pseudo-random functions for format 2, evaluated for thousands of inputs per call.

Format 2 salts name filters with values that are nearly unique per person (a full date of
birth, a full postcode), so caching a token's hash across records no longer helps: every
(salt, token) pair is new. HMAC per pair in Python would cost ~1.5 µs; AES-256 in ECB mode
over a batch of 128-bit blocks is a pseudo-random permutation keyed by the secret and runs
at several GB/s through ``cryptography`` (AES-NI) when it encrypts into an existing buffer. A block is ``salt (64 bits) ||
token id (56 bits) || block number (8 bits)``, so a pair can draw as many pseudo-random
bytes as its encoding needs. Token ids are public 56-bit digests of the token; all secrecy
sits in the AES key (HKDF from the shared secret, one per filter copy).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simlink.agency.tokens import Tokens, token_message

_TOKEN_BITS = 56
_TOKEN_MASK = np.uint64((1 << _TOKEN_BITS) - 1)


def token_id(tag: int, code: int | str) -> int:
    """Public 56-bit identifier of a token (the PRF input, not a secret)."""
    return int.from_bytes(hashlib.blake2b(token_message(tag, code), digest_size=7).digest(), "little")


class TokenIds:
    """Token ids for :class:`Tokens`, cached across chunks (a field has few distinct tokens).

    Numeric tokens are looked up as one int64 key per token in a hash index of the keys seen
    so far (``pd.Index.get_indexer``); only keys not seen before are hashed, once each.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[int, int | str], int] = {}
        self._keys = pd.Index(np.zeros(0, dtype=np.int64))  # numeric keys (tag << 56 ^ code) seen so far
        self._key_ids = np.zeros(0, dtype=np.uint64)

    def __call__(self, tokens: Tokens) -> np.ndarray:
        if len(tokens.tag) == 0:
            return np.zeros(0, dtype=np.uint64)
        if tokens.strings:  # e.g. phonetic codes: hash each distinct (tag, text) once
            texts = np.asarray(tokens.strings, dtype=object)[tokens.code]
            if tokens.tag.min() == tokens.tag.max():
                codes, distinct = pd.factorize(pd.Index(texts, dtype=object))
                keys = [(int(tokens.tag[0]), text) for text in distinct]
            else:
                codes, distinct = pd.factorize(pd.MultiIndex.from_arrays([tokens.tag, texts]))
                keys = [(int(tag), text) for tag, text in distinct]
            return np.array([self._id(k) for k in keys], dtype=np.uint64)[codes]
        combined = (tokens.tag.astype(np.int64) << np.int64(56)) ^ tokens.code.astype(np.int64)
        at = self._keys.get_indexer(combined)
        if (at < 0).any():  # hash the keys not seen before, once each
            new = pd.unique(combined[at < 0])
            tags = (new >> np.int64(56)).tolist()
            codes = (new ^ (np.asarray(tags, dtype=np.int64) << np.int64(56))).tolist()
            ids = np.array([self._id((t, c)) for t, c in zip(tags, codes)], dtype=np.uint64)
            self._keys = self._keys.append(pd.Index(new))
            self._key_ids = np.concatenate([self._key_ids, ids])
            at = self._keys.get_indexer(combined)
        return self._key_ids[at]

    def _id(self, key: tuple[int, int | str]) -> int:
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = token_id(*key)
        return found


class BatchPRF:
    """AES-256-ECB over (salt, token id, block number) blocks: ``blocks * 16`` bytes per input.

    Blocks are encrypted with ``update_into`` into a numpy buffer: ``update`` returns a new
    ``bytes`` object per call and runs about eight times slower than the cipher itself.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("BatchPRF needs a 256-bit key")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

    def __call__(self, salts: np.ndarray, token_ids: np.ndarray, blocks: int = 1) -> np.ndarray:
        """(n, 16 * blocks) uint8 pseudo-random bytes for n (salt, token id) pairs."""
        n = len(token_ids)
        plain = np.empty((n, blocks, 2), dtype=np.uint64)
        plain[:, :, 0] = np.asarray(salts, dtype=np.uint64)[:, None]
        counters = np.arange(blocks, dtype=np.uint64) << np.uint64(_TOKEN_BITS)
        plain[:, :, 1] = (np.asarray(token_ids, dtype=np.uint64) & _TOKEN_MASK)[:, None] | counters[None, :]
        return self.encrypt(plain).reshape(n, 16 * blocks)

    def encrypt(self, plain: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """AES of a C-contiguous uint64 array of (salt, token id | block number << 56) blocks,
        as uint8 bytes in the same layout (into ``out``, a uint8 buffer of at least
        ``plain.nbytes + 15`` bytes, when given; the result is a view of it)."""
        size = plain.nbytes
        if out is None:
            out = np.empty(size + 15, dtype=np.uint8)
        if size == 0:
            return out[:0]
        encryptor = self._cipher.encryptor()
        encryptor.update_into(memoryview(np.ascontiguousarray(plain)).cast("B"), memoryview(out)[: size + 15])
        encryptor.finalize()
        return out[:size]


def plain_blocks(salts: np.ndarray, token_ids: np.ndarray, counters: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` ((n, blocks, 2) uint64) with the plaintext blocks of n (salt, token id) pairs."""
    out[:, :, 0] = salts[:, None]
    np.bitwise_or((token_ids & _TOKEN_MASK)[:, None], counters[None, :], out=out[:, :, 1])
