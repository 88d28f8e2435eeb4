"""Keyed blocking tokens: let the linkage unit block on equal derivations without seeing them.

A blocking key such as ``family_name:soundex + date_of_birth:year`` becomes one signed 64-bit
token per record. Each part's value is first hashed with HMAC-SHA-256 under the blocking key
(once per distinct value, cached); the parts of a record are then mixed with a public 64-bit
mixing function. Without the secret nobody can compute the token of a chosen value; with
equal parts two records get equal tokens, which is all blocking needs.
"""

from __future__ import annotations

import jellyfish
import numpy as np

from simlink.bloom import _splitmix64
from simlink.keys import KeyedHash, derive_key
from simlink.schema import IDENTITY_DERIVATIONS, BlockingKey, Schema

_CACHE_LIMIT = 2_000_000


def _first_word(v: str) -> str:
    return v.split(" ", 1)[0]


def _phonetic(function):
    def derive(v: str) -> str | None:
        word = _first_word(v)
        return function(word) if word.isascii() and word.isalpha() else word

    return derive


def _unordered_day_month(v: str) -> str:
    month, day = v[5:7], v[8:10]
    return "".join(sorted((month, day)))


def _postcode_area(v: str) -> str:
    outward = v.split(" ", 1)[0]
    return outward[:2] if len(outward) > 1 and outward[1].isalpha() else outward[:1]


DERIVE = {
    ("person_name", "value"): lambda v: v,
    ("person_name", "first_word"): _first_word,
    ("person_name", "initial"): lambda v: v[:1],
    ("person_name", "soundex"): _phonetic(jellyfish.soundex),
    ("person_name", "metaphone"): _phonetic(jellyfish.metaphone),
    ("person_name", "nysiis"): _phonetic(jellyfish.nysiis),
    ("date", "ymd"): lambda v: v,
    ("date", "year"): lambda v: v[:4],
    ("date", "month_day"): lambda v: v[5:],
    ("date", "year_month"): lambda v: v[:7],
    ("date", "day_month_unordered"): _unordered_day_month,
    ("uk_postcode", "full"): lambda v: v,
    ("uk_postcode", "sector"): lambda v: v[:-2],
    ("uk_postcode", "district"): lambda v: v.split(" ", 1)[0],
    ("uk_postcode", "area"): _postcode_area,
    ("sex", "value"): lambda v: v,
    ("nhs_number", "value"): lambda v: v,
    ("text", "value"): lambda v: v,
}


class BlockingEncoder:
    """Computes every blocking token of a schema for batches of records."""

    def __init__(self, schema: Schema, secret: bytes) -> None:
        self.schema = schema
        self._hash = KeyedHash(derive_key(secret, "blocking", schema.fingerprint))
        self._cache: dict[str, int] = {}
        self._value_cache: dict[str, dict[str, int]] = {}  # part -> normalised value -> hash
        self._salts = {
            key.name: np.frombuffer(self._hash.digest(b"key:" + key.name.encode()), dtype="<u8", count=1)[0]
            for key in schema.blocking
        }

    def part_hashes(self, part: str, distinct_values: list[str], filter_words: np.ndarray,
                    unordered: bool = False) -> np.ndarray:
        """Keyed 64-bit hash of one part for each distinct normalised value (0 = missing).

        A part that is the whole value is hashed from the value's filter words, which are
        already keyed and equal exactly when the values are equal: no extra HMAC per value.
        Parts of an unordered key are hashed under their kind and derivation only, so the
        soundex of "Smith" is the same token whether it came from the given or family name.
        """
        field_name, derivation = part.split(":")
        if derivation in IDENTITY_DERIVATIONS:
            return self._words_hash(part, filter_words)
        normaliser = self.schema.field(field_name).normaliser
        derive = DERIVE[(normaliser, derivation)]
        label = f"{normaliser}:{derivation}" if unordered else part
        out = np.zeros(len(distinct_values), dtype=np.uint64)
        by_value = self._value_cache.setdefault(f"{part}\x1f{label}", {})
        if len(by_value) >= _CACHE_LIMIT:
            by_value.clear()
        for i, value in enumerate(distinct_values):
            if value is None:
                continue
            known = by_value.get(value)
            if known is not None:
                out[i] = known
                continue
            derived = derive(value)
            if not derived:
                continue
            message = f"{label}\x1f{derived}"
            cached = self._cache.get(message)
            if cached is None:
                cached = int.from_bytes(self._hash.digest(message.encode("utf-8"))[:8], "little") | 1
                if len(self._cache) >= _CACHE_LIMIT:  # unique ids (NHS numbers) would grow it forever
                    self._cache.clear()
                self._cache[message] = cached
            by_value[value] = cached
            out[i] = cached
        return out

    def _words_hash(self, part: str, filter_words: np.ndarray) -> np.ndarray:
        state = np.full(filter_words.shape[0], self._part_salt(part), dtype=np.uint64)
        for column in filter_words.view(np.uint64).T:
            state = _splitmix64(state ^ column)
        return state | np.uint64(1)

    def _part_salt(self, part: str) -> np.uint64:
        salt = self._cache.get("\x00salt\x00" + part)
        if salt is None:
            salt = int.from_bytes(self._hash.digest(b"part:" + part.encode("utf-8"))[:8], "little")
            self._cache["\x00salt\x00" + part] = salt
        return np.uint64(salt)

    def tokens(self, key: BlockingKey, part_values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Combine per-row part hashes into (token int64, missing bool) per row."""
        combined = np.full(len(part_values[0]), self._salts[key.name], dtype=np.uint64)
        missing = np.zeros(len(part_values[0]), dtype=bool)
        if key.unordered:
            part_values = list(np.sort(np.vstack(part_values), axis=0))
        for position, hashes in enumerate(part_values):
            missing |= hashes == 0
            with np.errstate(over="ignore"):
                combined = _splitmix64(combined ^ (hashes + np.uint64(position)))
        return combined.view(np.int64), missing
