"""Format-2 blocking tokens: one keyed hash over all parts of a key, per record.

A token is AES-256 (a keyed pseudo-random permutation, under a key of its own blocking key)
of a 64-bit digest of the record's derived parts joined with a separator that no normalised
value contains. The digest (pandas' vectorised SipHash with its fixed public key) only makes
the text fixed-length; all secrecy is in the AES key. Both run on whole arrays. Nothing of a part survives on
its own: tokens of different keys share no sub-hash (format 1 combined per-part hashes with
a public mixing function, so a two-part token could be split into its parts and tokens of
different keys chained through a shared part). A token is null when any part is missing.

The same token salts the field copies scoped by that key (:mod:`simlink.agency.filters`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import pandas as pd

from simlink.agency.blocking import derive_array
from simlink.agency.keyed import BatchPRF
from simlink.agency.keys import derive_key
from simlink.schema import BlockingKey, Schema

_SEPARATOR = "\x1f"
_TOKEN_MASK = np.uint64((1 << 63) - 1)


class ScopeTokens:
    """Computes every blocking token of a schema for batches of records."""

    def __init__(self, schema: Schema, secret: bytes) -> None:
        self.schema = schema
        fingerprint = schema.fingerprint
        self._prf = {key.name: BatchPRF(derive_key(secret, "token-v2", f"{fingerprint}/{key.name}"))
                     for key in schema.blocking}
        self._phonetic_cache: dict[str, dict[str, str]] = {}

    def _part(self, part: str, values: pa.Array, codes: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """One derived part: per row a code into the distinct derived strings (-1 when missing
        or empty), and those strings. Derived once per distinct field value, not per row."""
        field_name, derivation = part.split(":")
        normaliser = self.schema.field(field_name).normaliser
        derived = derive_array(normaliser, derivation, values, self._phonetic_cache.setdefault(part, {}))
        if derived is values:  # identity derivation: the field's values are distinct already
            strings, value_part = values, np.arange(len(values), dtype=np.int64)
        else:
            encoded = pc.dictionary_encode(derived)
            strings = encoded.dictionary
            value_part = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        empty = pc.equal(pc.utf8_length(strings), 0).to_numpy(zero_copy_only=False)
        if empty.any():
            value_part = np.where(empty[np.maximum(value_part, 0)], -1, value_part)
        value_part = np.append(value_part, -1)  # row code -1 (missing value) -> missing part
        return value_part[codes], strings

    def tokens(self, key: BlockingKey, rows: dict) -> tuple[np.ndarray, np.ndarray]:
        """(token int64, missing bool) per row; ``rows`` maps field name -> its _FieldRows."""
        row_codes, hashes = self.coded_tokens(key, rows)
        return np.append(hashes, np.int64(0))[row_codes], row_codes < 0  # -1 picks the trailing 0

    def coded_tokens(self, key: BlockingKey, rows: dict) -> tuple[np.ndarray, np.ndarray]:
        """Per row a code into the key's distinct tokens (-1 when a part is missing), and those
        tokens (int64). Codes let the scoped copies group rows without hashing tokens again.

        Rows are grouped by their parts' codes (integers), and each distinct combination's
        parts are joined and hashed once: the same tokens as hashing every row's joined text.
        """
        coded = [self._part(p, rows[p.split(":")[0]].values, rows[p.split(":")[0]].value_codes) for p in key.parts]
        if len(coded) == 1:
            row_codes, strings = coded[0]
            return row_codes, self._hash(key, strings)
        missing = np.zeros(len(coded[0][0]), dtype=bool)
        for part_codes, _ in coded:
            missing |= part_codes < 0
        combined = np.zeros(int((~missing).sum()), dtype=np.int64)
        for part_codes, strings in coded:  # mixed radix, re-factorised per part: stays < rows
            combined, _ = pd.factorize(combined * max(len(strings), 1) + part_codes[~missing])
        n_distinct = int(combined.max()) + 1 if len(combined) else 0
        first = np.empty(n_distinct, dtype=np.int64)
        first[combined[::-1]] = np.arange(len(combined) - 1, -1, -1, dtype=np.int64)  # a row per combination
        parts = [pc.take(strings, pa.array(part_codes[~missing][first])) for part_codes, strings in coded]
        if key.unordered:
            parts = self._sorted_within_kind(key, parts)
        row_codes = np.full(len(missing), -1, dtype=np.int64)
        row_codes[~missing] = combined
        return row_codes, self._hash(key, pc.binary_join_element_wise(*parts, _SEPARATOR))

    def _hash(self, key: BlockingKey, joined: pa.Array) -> np.ndarray:
        """Keyed 63-bit token (low bit set) of each text: AES of its 64-bit digest."""
        if len(joined) == 0:
            return np.zeros(0, dtype=np.int64)
        distinct = joined.to_numpy(zero_copy_only=False).astype(object)
        digests = pd.util.hash_array(distinct, categorize=False).astype(np.uint64)
        out = self._prf[key.name](digests, np.zeros(len(digests), np.uint64)).view("<u8")[:, 0]
        return ((out & _TOKEN_MASK) | np.uint64(1)).view(np.int64)

    def _sorted_within_kind(self, key: BlockingKey, parts: list[pa.Array]) -> list[pa.Array]:
        """Parts of the same kind and derivation in sorted order per row (swapped names agree)."""
        kinds = [(self.schema.field(p.split(":")[0]).normaliser, p.split(":")[1]) for p in key.parts]
        parts = list(parts)
        for kind in set(kinds):
            positions = [i for i, k in enumerate(kinds) if k == kind]
            for _ in range(len(positions)):  # bubble sort over a handful of parts
                for a, b in zip(positions, positions[1:]):
                    swap = pc.fill_null(pc.greater(parts[a], parts[b]), False)
                    parts[a], parts[b] = pc.if_else(swap, parts[b], parts[a]), pc.if_else(swap, parts[a], parts[b])
        return parts
