"""What the attacker reads: an encoded file's filters and blocking tokens, nothing else.

Filters are reduced to their *distinct* patterns with record counts, because every
attack here works on the pattern-frequency table (equal values give equal filters by design:
repeat contacts of one person must collapse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simlink.agency.bloom import unpack
from simlink.agency.encode import block_column, pop_column, read_manifest, words_columns
from simlink.schema import FieldSpec, Schema, schema_from_dict


@dataclass(frozen=True)
class FieldFilters:
    """Distinct non-empty filters of one field, how many records carry each, and which."""

    spec: FieldSpec
    matrix: np.ndarray  # (distinct, stored_bits) bool
    counts: np.ndarray  # (distinct,) int64
    inverse: np.ndarray  # (rows,) int64 index into matrix, -1 = missing value


@dataclass(frozen=True)
class EncodedFile:
    schema: Schema
    table: pa.Table
    rows: int

    def filters(self, field_name: str) -> FieldFilters:
        spec = self.schema.field(field_name)
        words = np.stack([self.table.column(c).to_numpy() for c in words_columns(field_name, spec.words)], axis=1)
        present = self.table.column(pop_column(field_name)).to_numpy() > 0
        inverse = np.full(self.rows, -1, dtype=np.int64)
        if not present.any():
            return FieldFilters(spec, np.zeros((0, spec.stored_bits), bool), np.zeros(0, np.int64), inverse)
        distinct, inv, counts = np.unique(words[present], axis=0, return_inverse=True, return_counts=True)
        inverse[present] = inv.reshape(-1)
        return FieldFilters(spec, unpack(distinct), counts.astype(np.int64), inverse)

    def tokens(self, key_name: str) -> np.ndarray:
        """Blocking tokens as int64 with nulls mapped to 0 (a real token is never 0 by chance)."""
        column = self.table.column(block_column(key_name))
        return column.fill_null(0).to_numpy().astype(np.int64)


def from_table(table: pa.Table, schema: Schema) -> EncodedFile:
    return EncodedFile(schema, table, table.num_rows)


def read_encoded(path: str | Path) -> EncodedFile:
    """Load an encoded file and the schema from its manifest (public: the attacker has it)."""
    manifest = read_manifest(path)
    schema = schema_from_dict(manifest["schema"], str(path))
    return from_table(pq.read_table(path), schema)
