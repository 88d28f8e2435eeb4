"""Reading an agency's input file in bounded chunks, with errors that never echo a value.

CSV (UTF-8, header row) and Parquet are accepted. Every column is read as text: the
normalisers decide what a value means. Row numbers in errors count data rows from 1
(the header is not a row).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from simlink.errors import InputError

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Batch:
    """A chunk of input rows as string columns; ``first_row`` is the 1-based row number."""

    first_row: int
    table: pa.Table


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError("input file not found", path=path)
    if path.is_dir():
        raise InputError("input is a directory, not a file", path=path)
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        raise InputError(f"cannot read input file ({exc.strerror})", path=path) from None
    if not head:
        raise InputError("input file is empty", path=path)


def read_header(path: Path) -> list[str]:
    """Column names of a CSV or Parquet input."""
    _check_readable(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError):
            raise InputError("not a readable Parquet file", path=path) from None
    with path.open("rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head:
        raise InputError("looks like a binary file, not a UTF-8 CSV", path=path)
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("header row is not valid UTF-8 text", path=path, row=0) from None
    names = next(csv.reader([text]), [])
    names = [n.strip() for n in names]
    if not names or all(n == "" for n in names):
        raise InputError("no header row with column names", path=path)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError("column name appears more than once in the header", path=path, column=duplicated[0])
    return names


class _HugeField(Exception):
    def __init__(self, row: int) -> None:
        self.row = row


def _find_bad_csv_row(path: Path, expected: int) -> int | None:
    """Error path only: scan with the csv module for the first row of the wrong width."""
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        number = 0
        try:
            next(reader, None)
            for number, row in enumerate(reader, start=1):
                if row and len(row) != expected:
                    return number
        except csv.Error:  # a field over the csv module's limit: an unclosed quote or a runaway cell
            raise _HugeField(number + 1) from None
    return None


def _parse_error(path: Path, width: int) -> InputError:
    """pyarrow's parse errors quote the row's text; re-state them without it."""
    try:
        bad = _find_bad_csv_row(path, width)
    except _HugeField as huge:
        return InputError("malformed CSV: a value is too long to read (an unclosed quote, or a cell of megabytes)",
                          path=path, row=huge.row)
    if bad is None:
        return InputError("not a readable CSV file", path=path)
    return InputError(f"malformed CSV: row has a different number of fields than the header ({width})",
                      path=path, row=bad)


def _to_strings(table: pa.Table, path: Path, first_row: int) -> pa.Table:
    """Cast every column to UTF-8 text; name the first row and column that is not UTF-8."""
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns.append(column.cast(pa.string()))
            continue
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            try:
                columns.append(column.cast(pa.string()))
            except pa.ArrowInvalid:
                for offset, value in enumerate(column.to_pylist()):
                    if value is None:
                        continue
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InputError("value is not valid UTF-8 text (save the file as UTF-8)",
                                         path=path, row=first_row + offset, column=name) from None
                raise InputError("column is not valid UTF-8 text", path=path, column=name) from None
            continue
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.date32())
        try:
            columns.append(column.cast(pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"column of type {column.type} cannot be read as text", path=path, column=name) from None
    return pa.table(columns, names=table.column_names)


def iter_batches(path: str | Path, columns: list[str], chunk_rows: int = 200_000) -> Iterator[Batch]:
    """Yield the requested columns as string tables of at most about ``chunk_rows`` rows."""
    path = Path(path)
    header = read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(
            f"required column missing (found: {', '.join(header)})", path=path, column=missing[0]
        )
    row = 1
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            parquet = pq.ParquetFile(path)
            for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                table = pa.Table.from_batches([record_batch])
                yield Batch(row, _to_strings(table, path, row))
                row += table.num_rows
        except (pa.ArrowException, OSError):
            raise InputError("Parquet file is damaged or unreadable", path=path, row=row) from None
        return
    # Average CSV row is ~60-100 bytes; a block of ~16 MB is about 200k rows.
    read_options = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 80), encoding="utf8")
    convert = pacsv.ConvertOptions(
        column_types={name: pa.binary() for name in header},
        include_columns=columns,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        reader = pacsv.open_csv(path, read_options=read_options, convert_options=convert)
    except pa.ArrowInvalid:
        raise _parse_error(path, len(header)) from None
    while True:
        try:
            record_batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid:
            raise _parse_error(path, len(header)) from None
        table = pa.Table.from_batches([record_batch])
        if table.num_rows == 0:
            continue
        yield Batch(row, _to_strings(table, path, row))
        row += table.num_rows
