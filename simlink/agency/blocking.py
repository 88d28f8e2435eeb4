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
import pyarrow as pa
import pyarrow.compute as pc

from simlink.agency.bloom import _splitmix64
from simlink.agency.keys import KeyedHash, derive_key
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
    ("identifier", "value"): lambda v: v,
}


def _first_word_array(values: pa.Array) -> pa.Array:
    return pc.list_element(pc.split_pattern(values, " ", max_splits=1), 0)


def _unordered_day_month_array(values: pa.Array) -> pa.Array:
    month, day = pc.utf8_slice_codeunits(values, 5, 7), pc.utf8_slice_codeunits(values, 8, 10)
    first = pc.if_else(pc.less_equal(month, day), month, day)
    second = pc.if_else(pc.less_equal(month, day), day, month)
    return pc.binary_join_element_wise(first, second, "")


def _slice(start: int, stop: int | None = None):
    return lambda values: pc.utf8_slice_codeunits(values, start, stop)


# Vectorised forms of DERIVE for whole Arrow arrays of normalised values (same results, tested
# against DERIVE); derivations not listed run DERIVE per distinct value.
DERIVE_ARRAY = {
    ("person_name", "first_word"): _first_word_array,
    ("person_name", "initial"): _slice(0, 1),
    ("date", "year"): _slice(0, 4),
    ("date", "month_day"): _slice(5),
    ("date", "year_month"): _slice(0, 7),
    ("date", "day_month_unordered"): _unordered_day_month_array,
    ("uk_postcode", "sector"): _slice(0, -2),
    ("uk_postcode", "district"): _first_word_array,
}
PHONETIC_DERIVATIONS = frozenset({"soundex", "metaphone", "nysiis"})


def derive_array(normaliser: str, derivation: str, values: pa.Array, cache: dict[str, str] | None = None) -> pa.Array:
    """A derivation of every value of a string array (null or empty = missing).

    Phonetic codes depend on the first word only: they are computed once per distinct first
    word, remembered in ``cache`` across chunks.
    """
    if derivation in IDENTITY_DERIVATIONS:
        return values
    vectorised = DERIVE_ARRAY.get((normaliser, derivation))
    if vectorised is not None:
        return vectorised(values)
    derive = DERIVE[(normaliser, derivation)]
    if derivation in PHONETIC_DERIVATIONS:
        encoded = pc.dictionary_encode(_first_word_array(values))
        cache = {} if cache is None else cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        words = encoded.dictionary.to_pylist()
        codes = []
        for word in words:
            code = cache.get(word)
            if code is None:
                code = cache[word] = derive(word)
            codes.append(code)
        return pc.take(pa.array(codes, pa.string()), encoded.indices)
    return pa.array([None if v is None else derive(v) for v in values.to_pylist()], pa.string())


class BlockingEncoder:
    """Computes every blocking token of a schema for batches of records."""

    def __init__(self, schema: Schema, secret: bytes) -> None:
        self.schema = schema
        self._hash = KeyedHash(derive_key(secret, "blocking", schema.fingerprint))
        self._cache: dict[str, int] = {}
        self._value_cache: dict[str, dict[str, str]] = {}  # part -> first word -> phonetic code
        self._salts = {
            key.name: np.frombuffer(self._hash.digest(b"key:" + key.name.encode()), dtype="<u8", count=1)[0]
            for key in schema.blocking
        }

    def part_hashes(self, part: str, distinct_values: pa.Array | list[str], filter_words: np.ndarray,
                    unordered: bool = False) -> np.ndarray:
        """Keyed 64-bit hash of one part for each distinct normalised value (0 = missing).

        A part that is the whole value is hashed from the value's filter words, which are
        already keyed and equal exactly when the values are equal: no extra HMAC per value.
        Parts of an unordered key are hashed under their kind and derivation only, so the
        soundex of "Smith" is the same token whether it came from the given or family name.
        """
        if part.split(":")[1] in IDENTITY_DERIVATIONS:
            return self._words_hash(part, filter_words)
        return self.derived_hashes(part, distinct_values, unordered)

    def derived_hashes(self, part: str, values: pa.Array | list[str], unordered: bool = False) -> np.ndarray:
        """Keyed hash of a derivation (not the whole value) of each value (0 = missing).

        The derivation runs on the whole array (Arrow kernels); the HMAC runs once per
        distinct derived value, cached across chunks.
        """
        field_name, derivation = part.split(":")
        if not isinstance(values, (pa.Array, pa.ChunkedArray)):
            values = pa.array(values, pa.string())
        normaliser = self.schema.field(field_name).normaliser
        label = f"{normaliser}:{derivation}" if unordered else part
        derived = derive_array(normaliser, derivation, values, self._value_cache.setdefault(part, {}))
        encoded = pc.dictionary_encode(derived)
        distinct = encoded.dictionary.to_pylist()
        hashes = np.zeros(len(distinct) + 1, dtype=np.uint64)  # last slot: missing
        if len(self._cache) + len(distinct) >= _CACHE_LIMIT:  # unique ids would grow it forever
            self._cache.clear()
        for i, value in enumerate(distinct):
            if not value:
                continue
            message = f"{label}\x1f{value}"
            cached = self._cache.get(message)
            if cached is None:
                cached = self._cache[message] = int.from_bytes(self._hash.digest(message.encode("utf-8"))[:8], "little") | 1
            hashes[i] = cached
        codes = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)
        return hashes[codes]

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
        if key.unordered:  # sort the hashes of interchangeable parts (same kind) row by row
            part_values = list(part_values)
            kinds = [(self.schema.field(p.split(":")[0]).normaliser, p.split(":")[1]) for p in key.parts]
            for kind in set(kinds):
                positions = [i for i, k in enumerate(kinds) if k == kind]
                if len(positions) > 1:
                    for i, hashes in zip(positions, np.sort(np.vstack([part_values[i] for i in positions]), axis=0)):
                        part_values[i] = hashes
        for position, hashes in enumerate(part_values):
            missing |= hashes == 0
            with np.errstate(over="ignore"):
                combined = _splitmix64(combined ^ (hashes + np.uint64(position)))
        return combined.view(np.int64), missing
