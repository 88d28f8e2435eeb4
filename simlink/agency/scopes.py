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

    def _part(self, part: str, values: pa.Array, codes: np.ndarray) -> pa.Array:
        """One derived part per row (null when missing or empty)."""
        field_name, derivation = part.split(":")
        normaliser = self.schema.field(field_name).normaliser
        derived = derive_array(normaliser, derivation, values, self._phonetic_cache.setdefault(part, {}))
        derived = pc.if_else(pc.equal(pc.utf8_length(derived), 0), pa.scalar(None, pa.string()), derived)
        return pc.take(derived, pa.array(codes, mask=codes < 0))

    def tokens(self, key: BlockingKey, rows: dict) -> tuple[np.ndarray, np.ndarray]:
        """(token int64, missing bool) per row; ``rows`` maps field name -> its _FieldRows."""
        parts = [self._part(p, rows[p.split(":")[0]].values, rows[p.split(":")[0]].value_codes) for p in key.parts]
        if key.unordered:
            parts = self._sorted_within_kind(key, parts)
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _SEPARATOR)
        encoded = pc.dictionary_encode(joined)
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        digests = pd.util.hash_array(distinct, categorize=False).astype(np.uint64)
        out = self._prf[key.name](digests, np.zeros(len(digests), np.uint64)).view("<u8")[:, 0]
        hashes = np.zeros(len(distinct) + 1, dtype=np.int64)
        hashes[:-1] = ((out & _TOKEN_MASK) | np.uint64(1)).view(np.int64)
        codes = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False).astype(np.int64)
        return hashes[codes], codes == len(distinct)

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
