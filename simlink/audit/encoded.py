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
        prefix = spec.copies[0].prefix if hasattr(spec, "copies") else field_name  # format 2: the first copy
        words = np.stack([self.table.column(c).to_numpy() for c in words_columns(prefix, spec.words)], axis=1)
        present = self.table.column(pop_column(prefix)).to_numpy() > 0
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


# ------------------------------------------------------------ the linkage unit's view
# Everything below reads the filter column groups from the manifest, so the attacks run on
# any encoded format: v1 (one filter per field, ``<field>__w*``) or v2 (a ``filters`` list,
# several copies of a field each salted by a scope value).

READABLE_FORMAT_VERSIONS = (1, 2)


@dataclass(frozen=True)
class FilterGroup:
    """One stored filter: columns ``<name>__w0..`` and ``<name>__pop``, encoding ``field``.

    ``scope``: the derivation ("field:derivation") whose value salts it, or None; filters
    of different scope values are unrelated, filters of one scope value compare.
    """

    name: str
    field: str
    scope: str | None
    words: int
    encoding: str = "bloom"

    @property
    def columns(self) -> list[str]:
        return [f"{self.name}__w{i}" for i in range(self.words)]

    @property
    def pop(self) -> str:
        return f"{self.name}__pop"


def filter_groups(manifest: dict, schema: Schema | None) -> dict[str, list[FilterGroup]]:
    """Per identifier field, its stored filters: the manifest's ``filters`` list (v2) or,
    for v1, one group per schema field (salted by its ``salt_derivation``)."""
    listed = manifest.get("filters")
    if listed is None and isinstance(manifest.get("schema"), dict):
        listed = manifest["schema"].get("filters")
    out: dict[str, list[FilterGroup]] = {}
    if listed:
        for doc in listed:
            scope = doc.get("scope") or None
            if scope is None and schema is not None:  # a v1 salt (hardening) carried into format 2
                spec = next((f for f in schema.fields if f.name == doc["field"]), None)
                scope = (spec.hardening.salt_derivation or None) if spec is not None else None
            encoding = doc.get("encoding") or next((getattr(f, "encoding", "bloom") for f in (schema.fields if schema
                                                    else ()) if f.name == doc["field"]), "bloom")
            group = FilterGroup(str(doc["name"]), str(doc["field"]), scope, int(doc["words"]), str(encoding))
            out.setdefault(group.field, []).append(group)
        return out
    if schema is None:
        return out
    for f in schema.fields:
        out[f.name] = [FilterGroup(f.name, f.name, f.hardening.salt_derivation or None, f.words)]
    return out


def read_manifest_lenient(path: str | Path) -> dict:
    """The manifest of a v1 or v2 encoded file (the audit reads both)."""
    from simlink.agency.encode import read_manifest

    return read_manifest(path, versions=tuple(READABLE_FORMAT_VERSIONS))


ENCODING_META = ("agency", "record_id", "service", "contact_date")


@dataclass
class Corpus:
    """Every agency's encoded file at once, as the linkage unit holds them.

    ``file`` gives, per row of the concatenated ``table``, the index of its file.
    """

    schema: Schema
    manifest: dict
    table: pa.Table
    file: np.ndarray
    paths: list[str]
    groups: dict[str, list[FilterGroup]]

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def words(self, group: FilterGroup) -> np.ndarray:
        """(rows, words) int64 filter words of one stored filter."""
        return np.stack([self.table.column(c).to_numpy() for c in group.columns], axis=1)

    def present(self, group: FilterGroup) -> np.ndarray:
        return self.table.column(group.pop).to_numpy() > 0

    def block_names(self) -> list[str]:
        return [c[len("blk__"):] for c in self.table.column_names if c.startswith("blk__")]

    def tokens(self, key_name: str) -> np.ndarray:
        """Blocking tokens as int64, 0 for null."""
        return self.table.column(f"blk__{key_name}").fill_null(0).to_numpy().astype(np.int64)

    def record_hash(self) -> np.ndarray:
        """A 64-bit hash of each row's whole encoding (every filter and token, no metadata):
        equal hashes = byte-identical encodings."""
        import pandas as pd

        columns = [c for c in self.table.column_names if c not in ENCODING_META]
        frame = self.table.select(columns).to_pandas()
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def corpus_from_tables(tables: list[pa.Table], schema: Schema, manifest: dict | None = None,
                       names: list[str] | None = None) -> Corpus:
    """A corpus from in-memory encoded tables (tests, benchmarks)."""
    if manifest is None:
        manifest = {"schema": schema.to_dict()}
        if hasattr(schema, "copies"):  # format 2: the encoder lists every stored filter
            manifest["filters"] = [c.to_dict() for c in schema.copies]
    file = np.concatenate([np.full(t.num_rows, i, dtype=np.int64) for i, t in enumerate(tables)])
    table = pa.concat_tables(tables)
    return Corpus(schema, manifest, table, file, names or [f"<table {i}>" for i in range(len(tables))],
                  filter_groups(manifest, schema))


def read_corpus(paths: list[str | Path]) -> Corpus:
    """Load several encoded files of one schema (fingerprints must agree)."""
    from simlink.errors import InputError

    manifests = [read_manifest_lenient(p) for p in paths]
    fingerprint = manifests[0].get("fingerprint", manifests[0].get("schema_fingerprint"))
    for path, manifest in zip(paths[1:], manifests[1:]):
        if manifest.get("fingerprint", manifest.get("schema_fingerprint")) != fingerprint:
            raise InputError("encoded with a different schema than the first file (fingerprints differ)", path=path)
    schema = schema_from_dict(manifests[0]["schema"], str(paths[0]))
    tables = [pq.read_table(p) for p in paths]
    first = tables[0].schema
    for path, table in zip(paths[1:], tables[1:]):
        if table.schema.names != first.names:
            raise InputError("columns differ from the first file's", path=path)
    return corpus_from_tables(tables, schema, manifests[0], [str(p) for p in paths])
