"""Encoding at the agency: contact records in, a file without raw identifiers out.

The output is a Parquet file with one row per input record:

* ``agency``, ``record_id`` (the agency's own reference), ``service``, ``contact_date``;
* per filter copy ``<copy>__w0 .. <copy>__wN`` (the filter as signed 64-bit words) and
  ``<copy>__pop`` (its popcount; 0 means the value, or its scope value, was missing). A
  field's copies are listed in the manifest (``filters``): an unsalted field has one copy
  named after the field; a field salted by blocking keys has one copy per key, named
  ``<field>__by_<key>`` (format 2, see docs/encoding.md);
* per blocking key ``blk__<name>`` (a keyed 63-bit token, null if a part was missing);

and a manifest in the Parquet key-value metadata (key ``simlink``): format version, simlink
version, agency, the schema and its fingerprint, the key check value, row counts. Work is
done per chunk and, within a chunk, per distinct value, so memory is bounded by the chunk
size and time by the number of distinct values.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simlink import __version__, outputs
from simlink.agency.blocking import derive_array
from simlink.agency.bloom import FieldEncoder
from simlink.agency.filters import CopyEncoder, FieldTokens
from simlink.agency.scopes import ScopeTokens
from simlink.errors import InputError, OutputExistsError, SimlinkError
from simlink.agency.inputs import iter_batches, read_header
from simlink.agency.keys import key_check_value
from simlink.agency.normalise import NORMALISERS, STRICT_NORMALISERS, date as normalise_date
from simlink.schema import FieldSpec, FilterCopy, Schema

MANIFEST_KEY = b"simlink"
FORMAT_NAME = "simlink-encoded"
FORMAT_VERSION = 2
AGENCY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ROW_WISE_RATIO = 0.9  # a field whose chunk was this distinct is normalised per row in later chunks
_DICTIONARY_SHARE = 0.25  # columns at most this distinct in the first chunk get Parquet dictionary pages


def words_columns(field_name: str, words: int) -> list[str]:
    return [f"{field_name}__w{i}" for i in range(words)]


def pop_column(field_name: str) -> str:
    return f"{field_name}__pop"


def block_column(key_name: str) -> str:
    return f"blk__{key_name}"


MAX_VALUE_CHARS = 200  # longer identifier values are cut to this and counted (a 10 MB "name")


@dataclass
class FieldCounts:
    missing: int = 0
    invalid: int = 0
    truncated: int = 0  # values longer than MAX_VALUE_CHARS, cut
    flagged: dict[str, int] = field(default_factory=dict)  # e.g. implausible dates, non-UK postcodes


@dataclass
class EncodeSummary:
    """What an encoding run did, for the one-line summary and the manifest."""

    agency: str
    rows: int = 0
    rows_with_missing: int = 0
    fields: dict[str, FieldCounts] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)  # input columns no field reads
    seconds: float = 0.0
    output: str = ""

    def line(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        missing = ", ".join(f"{k} {v.missing:,}" for k, v in self.fields.items() if v.missing)
        invalid = ", ".join(f"{k} {v.invalid:,}" for k, v in self.fields.items() if v.invalid)
        text = (f"encoded {self.rows:,} rows for agency '{self.agency}' in {self.seconds:.1f} s "
                f"({rate:,.0f} rows/s); rows with a missing field: {self.rows_with_missing:,}")
        if missing:
            text += f" [{missing}]"
        if invalid:
            text += f"; unusable values encoded as missing: {invalid}"
        for kind, label in FLAG_LABELS.items():
            flagged = ", ".join(f"{k} {v.flagged[kind]:,}" for k, v in self.fields.items() if v.flagged.get(kind))
            if flagged:
                text += f"; {label}: {flagged}"
        cut = ", ".join(f"{k} {v.truncated:,}" for k, v in self.fields.items() if v.truncated)
        if cut:
            text += f"; values over {MAX_VALUE_CHARS} characters cut: {cut}"
        if self.ignored_columns:
            text += f"; input columns not in the schema, ignored: {', '.join(self.ignored_columns)}"
        return text


FLAG_LABELS = {"implausible": "dates in the future or before 1900 (unusable)",
               "not_uk": "postcodes not UK-shaped, encoded as text"}


def check_agency_name(agency: str) -> str:
    if not AGENCY_PATTERN.match(agency or ""):
        raise SimlinkError("agency name must be 1-40 characters: lower-case letters, digits and _, starting with a letter")
    return agency


def _factorize(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Row codes (-1 for null) and the distinct non-null values."""
    encoded = pc.dictionary_encode(values)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


@dataclass
class _FieldRows:
    """One field of a chunk: its distinct normalised values and, per row, which filter it gets.

    ``value_codes`` index ``values`` (-1 = missing); ``filter_codes`` index ``words`` (-1 =
    missing). Without salting they are the same; with salting a filter is per (value, salt).
    """

    values: pa.Array
    value_codes: np.ndarray
    filter_codes: np.ndarray | None = None
    words: np.ndarray | None = None


def _salted_pairs(codes: np.ndarray, salt: _FieldRows, normaliser: str, derivation: str,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows of a salted field grouped into distinct (value, salt) pairs.

    The salt is the field's ``salt_derivation`` (e.g. ``date_of_birth:year``) of the same
    record; a missing or unusable salt value is the empty salt. Returns the row codes into the
    pairs, each pair's value code and salt code, and the salt names.
    """
    derived = pc.fill_null(derive_array(normaliser, derivation, salt.values), "")
    encoded = pc.dictionary_encode(derived)
    # Salts sorted, pairs sorted by (value, salt): the order the filters were first computed
    # in, which matters for byte-identical output (see FieldEncoder.pair_words).
    found = encoded.dictionary.to_pylist()
    salt_names = sorted(set(found) | {""})
    rank = pd.Index(salt_names).get_indexer(pd.Index(found, dtype=object)).astype(np.int64)
    salt_of_value = np.append(rank[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)],
                              0)  # "" sorts first
    row_salt = salt_of_value[salt.value_codes]  # code -1 picks the trailing empty salt
    present = codes >= 0
    pair = np.where(present, codes * len(salt_names) + row_salt, -1)
    uniq, inverse = np.unique(pair[present], return_inverse=True)
    pair_codes = np.full(len(codes), -1, dtype=np.int64)
    pair_codes[present] = inverse.reshape(-1)
    return pair_codes, uniq // len(salt_names), uniq % len(salt_names), salt_names


class Encoder:
    """Encodes tables of agency records under one schema and secret.

    Keeps per-token and per-value caches across chunks; use one per input file.
    """

    def __init__(self, schema: Schema, secret: bytes, agency: str, *, strict: bool = True) -> None:
        self.schema = schema
        self.agency = check_agency_name(agency)
        self.strict = strict
        fingerprint = schema.fingerprint
        # Unsalted bloom copies keep the format-1 encoder (and its hardening options); salted or
        # minhash copies use the batch-PRF encoder.
        self.copies: dict[str, FieldEncoder | CopyEncoder] = {}
        for f in schema.fields:
            tokens = FieldTokens(f)  # a field's copies tokenise each chunk's values once
            for copy in f.copies:
                legacy = copy.scope == "" and f.encoding == "bloom"
                self.copies[copy.prefix] = (FieldEncoder(f, secret, fingerprint) if legacy
                                            else CopyEncoder(f, copy.scope, secret, fingerprint, tokens))
        self.blocking = ScopeTokens(schema, secret)
        self._row_wise: set[str] = set()  # fields normalised per row, not per distinct value
        self._distinct_share: dict[str, float] = {}  # copy or token column -> distinct/rows, first chunk
        self.arrow_schema = self._arrow_schema()

    def _arrow_schema(self) -> pa.Schema:
        columns = [
            pa.field("agency", pa.string(), nullable=False),
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("service", pa.string(), nullable=False),
            pa.field("contact_date", pa.date32(), nullable=False),
        ]
        for copy in self.schema.copies:
            columns += [pa.field(c, pa.int64(), nullable=False) for c in words_columns(copy.prefix, copy.words)]
            columns.append(pa.field(pop_column(copy.prefix), pa.int16(), nullable=False))
        columns += [pa.field(block_column(b.name), pa.int64()) for b in self.schema.blocking]
        return pa.schema(columns)

    def parquet_options(self) -> dict:
        """Writer options, from the first chunk: dictionary pages only for columns that repeat
        (agency, service, dates, popcounts, and the filters and tokens that were at most
        _DICTIONARY_SHARE distinct, e.g. sex or an unscoped name), and no min/max statistics for
        filter words. On near-unique columns (scoped filters, most tokens) the writer's
        dictionary attempt was wasted work, half the writing time, and statistics would tell a
        reader nothing. The values written are the same either way."""
        words = {c for copy in self.schema.copies for c in words_columns(copy.prefix, copy.words)}
        repeating = {c for copy in self.schema.copies if self._distinct_share.get(copy.prefix, 1.0) <= _DICTIONARY_SHARE
                     for c in words_columns(copy.prefix, copy.words)}
        repeating |= {block_column(b.name) for b in self.schema.blocking
                      if self._distinct_share.get(block_column(b.name), 1.0) <= _DICTIONARY_SHARE}
        unique = words | {block_column(b.name) for b in self.schema.blocking} | {"record_id"}
        names = self.arrow_schema.names
        return {"use_dictionary": [c for c in names if c not in unique or c in repeating],
                "write_statistics": [c for c in names if c not in words]}

    def input_columns(self, available: list[str]) -> list[str]:
        """Input columns to read: record columns, then each field's column if present."""
        record = self.schema.record
        wanted = [record.record_id, record.contact_date] + ([record.service] if record.service else [])
        for f in self.schema.fields:
            if not (f.optional_column and f.column not in available) and f.column not in wanted:
                wanted.append(f.column)
        return wanted

    def encode_table(self, table: pa.Table, *, path: str | Path = "<table>", first_row: int = 1,
                     summary: EncodeSummary | None = None) -> pa.Table:
        """Encode one chunk of string columns (as read by :mod:`simlink.agency.inputs`)."""
        n = table.num_rows
        record = self.schema.record
        out: dict[str, pa.Array | np.ndarray] = {}
        out["agency"] = pa.repeat(pa.scalar(self.agency, pa.string()), n)
        record_ids = pc.utf8_trim_whitespace(table.column(record.record_id).combine_chunks())
        self._require_present(record_ids, path, first_row, record.record_id, "record_id is empty")
        out["record_id"] = record_ids
        if record.service:
            service = pc.utf8_lower(pc.utf8_trim_whitespace(table.column(record.service).combine_chunks()))
            empty = pc.equal(pc.utf8_length(service), 0)
            out["service"] = pc.if_else(empty, self.agency, service)
        else:
            out["service"] = out["agency"]
        contact_codes, contact_distinct = _factorize(table.column(record.contact_date).combine_chunks())
        contact = normalise_date(contact_distinct, plausible_only=False).values.cast(pa.date32())
        contact_rows = pc.take(contact, pa.array(contact_codes, mask=contact_codes < 0))
        self._require_present(contact_rows, path, first_row, record.contact_date,
                              "contact date is missing or not a date (expected e.g. 2025-03-31 or 31/03/2025)")
        out["contact_date"] = contact_rows

        any_missing = np.zeros(n, dtype=bool)
        rows: dict[str, _FieldRows] = {}
        for spec in self.schema.fields:
            counts = summary.fields.setdefault(spec.name, FieldCounts()) if summary else FieldCounts()
            rows[spec.name] = self._normalise_field(table, spec, counts, path, first_row)
            any_missing |= rows[spec.name].value_codes < 0
        tokens: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # key -> (row codes, distinct tokens)
        for key in self.schema.blocking:
            codes, distinct = tokens[key.name] = self.blocking.coded_tokens(key, rows)
            self._distinct_share.setdefault(block_column(key.name), len(distinct) / max(n, 1))
            out[block_column(key.name)] = pa.array(np.append(distinct, np.int64(0))[codes], pa.int64(), mask=codes < 0)
        for spec in self.schema.fields:
            for copy in spec.copies:
                self._encode_copy(spec, copy, rows, tokens, out)

        if summary is not None:
            summary.rows += n
            summary.rows_with_missing += int(any_missing.sum())
        arrays = [out[f.name] if isinstance(out[f.name], (pa.Array, pa.ChunkedArray)) else pa.array(out[f.name], f.type)
                  for f in self.arrow_schema]
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)

    def _normalise_field(self, table: pa.Table, spec: FieldSpec, counts: FieldCounts, path: str | Path,
                         first_row: int) -> _FieldRows:
        """Distinct normalised values of one field and each row's code into them."""
        n = table.num_rows
        column = table.column(spec.column).combine_chunks() if spec.column in table.column_names else None
        if column is not None:
            column = _cut_overlong(column, counts)
        row_wise = column is not None and spec.name in self._row_wise and column.null_count == 0
        if row_wise:
            # Nearly every value distinct (NHS numbers, postcodes): normalising the rows directly
            # saves a factorisation. Same values, and the same order of distinct values.
            normalised = NORMALISERS[spec.normaliser](column)
            invalid_rows = normalised.invalid
        else:
            if column is not None:
                raw_codes, raw_distinct = _factorize(column)
            else:  # optional column not supplied by this agency
                raw_codes, raw_distinct = np.full(n, -1, dtype=np.int64), pa.array([], pa.string())
            normalised = NORMALISERS[spec.normaliser](raw_distinct)
            invalid_rows = (raw_codes >= 0) & normalised.invalid[np.maximum(raw_codes, 0)] if len(raw_distinct) else np.zeros(n, bool)
            if n and len(raw_distinct) > _ROW_WISE_RATIO * n:
                self._row_wise.add(spec.name)
        flag_rows = {kind: mask if row_wise else (raw_codes >= 0) & mask[np.maximum(raw_codes, 0)]
                     for kind, mask in normalised.flags.items() if len(mask)}
        if invalid_rows.any() and self.strict and spec.normaliser in STRICT_NORMALISERS:
            first = int(np.flatnonzero(invalid_rows)[0])
            what = ("date is in the future or before 1900" if flag_rows.get("implausible", np.zeros(n, bool))[first]
                    else f"value cannot be read as {spec.normaliser.replace('_', ' ')}")
            raise InputError(f"{what} (use --invalid missing to encode such values as missing)",
                             path=path, row=first_row + first, column=spec.column)
        for kind, rows_flagged in flag_rows.items():
            counts.flagged[kind] = counts.flagged.get(kind, 0) + int(rows_flagged.sum())
        norm_codes, distinct = _factorize(normalised.values)
        if row_wise:
            codes = norm_codes
        else:
            codes = np.where(raw_codes >= 0, norm_codes[np.maximum(raw_codes, 0)] if len(norm_codes) else -1, -1)
        counts.invalid += int(invalid_rows.sum())
        counts.missing += int((codes < 0).sum())
        return _FieldRows(distinct, codes)

    def _encode_copy(self, spec: FieldSpec, copy: FilterCopy, rows: dict[str, _FieldRows],
                     tokens: dict[str, tuple[np.ndarray, np.ndarray]], out: dict) -> None:
        """Filter words and popcount columns of one copy (per distinct value or (value, salt) pair)."""
        field_rows = rows[spec.name]
        encoder = self.copies[copy.prefix]
        if isinstance(encoder, CopyEncoder):
            n = len(field_rows.value_codes)
            salt_codes, salts = tokens[copy.scope] if copy.scope else (np.zeros(n, np.int64), np.zeros(1, np.int64))
            present = (field_rows.value_codes >= 0) & (salt_codes >= 0)
            # Distinct (value, scope token) pairs: one int64 per row from the two codes, factorised
            # by hashing (np.unique over rows was a third of the encoding time).
            radix = max(len(salts), 1)
            pair_codes, pairs = pd.factorize(field_rows.value_codes[present] * radix + salt_codes[present])
            codes = np.full(n, -1, dtype=np.int64)
            codes[present] = pair_codes
            pair_salt = salts[pairs % radix] if len(pairs) else np.zeros(0, np.int64)
            words, pops = encoder.encode_pairs(field_rows.values, pairs // radix, pair_salt.view(np.uint64))
        elif spec.hardening.salt_derivation:
            salt_field, derivation = spec.hardening.salt_derivation.split(":")
            codes, pair_value, pair_salt, salt_names = _salted_pairs(
                field_rows.value_codes, rows[salt_field], self.schema.field(salt_field).normaliser, derivation)
            words, pops = encoder.encode_pairs(field_rows.values, pair_value, pair_salt, salt_names)
        else:
            codes = field_rows.value_codes
            words, pops = encoder.encode_pairs(field_rows.values, np.arange(len(field_rows.values), dtype=np.int64))
        self._distinct_share.setdefault(copy.prefix, len(words) / max(len(codes), 1))
        # One contiguous column per word (row -1 = the empty filter), so Arrow takes it as is.
        columns = np.zeros((copy.words, len(words) + 1), dtype=np.int64)
        columns[:, :-1] = words.T
        for i, name in enumerate(words_columns(copy.prefix, copy.words)):
            out[name] = columns[i][codes]
        out[pop_column(copy.prefix)] = np.append(pops, np.int16(0))[codes]

    @staticmethod
    def _require_present(values: pa.Array, path: str | Path, first_row: int, column: str, message: str) -> None:
        bad = values.is_null()
        if pa.types.is_string(values.type):
            bad = pc.or_(bad, pc.equal(pc.utf8_length(values), 0))
        bad_np = pc.fill_null(bad, True).to_numpy(zero_copy_only=False)
        if bad_np.any():
            raise InputError(message, path=path, row=first_row + int(np.flatnonzero(bad_np)[0]), column=column)

    def manifest(self, secret: bytes, summary: EncodeSummary) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "simlink_version": __version__,
            "agency": self.agency,
            "schema_fingerprint": self.schema.fingerprint,
            "key_check": key_check_value(secret),
            "schema": self.schema.to_dict(),
            "filters": [c.to_dict() for c in self.schema.copies],
            "rows": summary.rows,
            "rows_with_missing": summary.rows_with_missing,
            "fields": {k: asdict(v) for k, v in summary.fields.items()},
        }


def _cut_overlong(column: pa.Array, counts: FieldCounts) -> pa.Array:
    """Cut values longer than MAX_VALUE_CHARS (no identifier is that long; a runaway cell is)."""
    long = pc.fill_null(pc.greater(pc.utf8_length(column), MAX_VALUE_CHARS), False)
    cut = int(pc.sum(long).as_py() or 0)
    if not cut:
        return column
    counts.truncated += cut
    return pc.if_else(long, pc.utf8_slice_codeunits(column, 0, MAX_VALUE_CHARS), column)


def _temporary_path(output: Path) -> Path:
    return outputs.partial_path(output)


def encode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    secret: bytes,
    agency: str,
    schema: Schema,
    overwrite: bool = False,
    strict: bool = True,
    chunk_rows: int = 200_000,
    progress: Callable[[int], None] | None = None,
) -> EncodeSummary:
    """Encode an agency's CSV/Parquet file into an encoded Parquet file, atomically.

    Nothing is written at ``output_path`` unless the whole input encodes: the data goes to
    a temporary file beside it, renamed into place at the end.
    """
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    encoder = Encoder(schema, secret, agency, strict=strict)
    if output_path.exists() and not overwrite:
        raise OutputExistsError("output already exists (use --overwrite to replace it)", path=output_path)
    outputs.check_target(output_path)
    outputs.clean_stale_partials(output_path)
    header = read_header(input_path)
    columns = encoder.input_columns(header)
    summary = EncodeSummary(agency=agency, output=str(output_path),
                            ignored_columns=[c for c in header if c not in columns])
    seen_ids: list[pa.Array] = []
    temporary = _temporary_path(output_path)
    writer = None
    try:
        for batch in iter_batches(input_path, columns, chunk_rows=chunk_rows):
            encoded = encoder.encode_table(batch.table, path=input_path, first_row=batch.first_row, summary=summary)
            seen_ids.append(encoded.column("record_id").combine_chunks())
            if writer is None:  # opened after the first chunk, whose shape sets the page encodings
                writer = pq.ParquetWriter(temporary, encoder.arrow_schema, compression="zstd",
                                          **encoder.parquet_options())
            writer.write_table(encoded)
            if progress is not None:
                progress(batch.table.num_rows)
        if summary.rows == 0:
            raise InputError("input file has a header but no records", path=input_path)
        _check_unique_ids(seen_ids, input_path, schema.record.record_id)
        summary.seconds = time.perf_counter() - started
        writer.add_key_value_metadata({MANIFEST_KEY: json.dumps(encoder.manifest(secret, summary), sort_keys=True)})
        writer.close()
        writer = None
        os.replace(temporary, output_path)
    except OSError as exc:  # disk full, permissions changed under us: one line, no partial file
        raise SimlinkError(f"cannot write ({outputs.reason(exc)})", path=output_path) from None
    finally:
        if writer is not None:
            writer.close()
        if temporary.exists():
            temporary.unlink()
    summary.seconds = time.perf_counter() - started
    return summary


def _check_unique_ids(chunks: list[pa.Array], path: Path, column: str) -> None:
    """Refuse repeated record ids, naming the first row that repeats an earlier one."""
    if not chunks:
        return
    encoded = pc.dictionary_encode(pa.chunked_array(chunks, pa.string()).combine_chunks())
    if len(encoded.dictionary) == len(encoded):
        return
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    first = np.full(len(encoded.dictionary), len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    repeats = np.flatnonzero(first[codes] != np.arange(len(codes)))
    raise InputError("record_id is not unique (each contact needs its own reference)",
                     path=path, row=int(repeats.min()) + 1, column=column)


def read_manifest(path: str | Path, *, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> dict:
    """The manifest of an encoded file; a clear error if it is not one, or not of ``versions``
    (linkage reads format 2 only; the audit also reads format 1 to show it breaks)."""
    path = Path(path)
    if not path.exists():
        raise InputError("encoded file not found", path=path)
    try:
        metadata = pq.ParquetFile(path).metadata.metadata or {}
    except (pa.ArrowException, OSError):
        raise InputError("not a readable Parquet file", path=path) from None
    raw = metadata.get(MANIFEST_KEY)
    if raw is None:
        raise InputError("not a simlink encoded file (no manifest); was it made by 'simlink encode'?", path=path)
    manifest = json.loads(raw)
    if manifest.get("format") != FORMAT_NAME:
        raise InputError("not a simlink encoded file (unknown format in its manifest)", path=path)
    if manifest.get("format_version") in versions:
        return manifest
    if manifest.get("format_version") == 1:
        raise InputError("encoded with simlink format 1, whose hardening the linkage unit can undo; "
                         "re-encode the agency's source file with this simlink ('simlink encode') and "
                         "send the new file", path=path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(f"encoded file format version {manifest.get('format_version')} is not supported by "
                         f"this simlink (it reads format {FORMAT_VERSION}); use the simlink that wrote it", path=path)
    return manifest
