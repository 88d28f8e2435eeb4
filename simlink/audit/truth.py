"""What the audit scores against, and the persons the attacker links.

The agencies' own inputs (``--truth``) give each record's true names and birth year; they
only score guesses and are never printed. Persons come from the linkage unit's own linkage
output (a ``simlink link`` database, or a CSV ``agency,record_id,person_id``); a synth
``truth.csv`` in the same form is a perfect linkage — a stronger attacker than a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from simlink.agency.inputs import iter_batches
from simlink.agency.normalise import NORMALISERS
from simlink.audit.encoded import Corpus
from simlink.audit.reference import NAME_FIELDS
from simlink.errors import InputError


@dataclass
class Truth:
    """Per record of the corpus: true normalised names, birth year (-1 unknown)."""

    names: dict[str, np.ndarray]  # field -> object array (None = missing)
    year: np.ndarray


def _keys(corpus: Corpus) -> pd.DataFrame:
    return pd.DataFrame({"agency": corpus.table.column("agency").to_numpy(zero_copy_only=False),
                         "record_id": corpus.table.column("record_id").to_numpy(zero_copy_only=False)})


def truth_from_tables(corpus: Corpus, tables: list[pa.Table], sources: list[str]) -> Truth:
    """Match each encoded file's rows with the input table it was encoded from (same order)."""
    schema = corpus.schema
    if len(tables) != len(corpus.paths):
        raise InputError(f"give one --truth input per encoded file ({len(corpus.paths)}), in the same order",
                         path=sources[0] if sources else None)
    names = {f: np.full(corpus.rows, None, dtype=object) for f in NAME_FIELDS if _has(schema, f)}
    year = np.full(corpus.rows, -1, dtype=np.int64)
    ids = corpus.table.column("record_id").to_numpy(zero_copy_only=False)
    for i, (table, source) in enumerate(zip(tables, sources)):
        rows = np.flatnonzero(corpus.file == i)
        given = pd.Index([str(v).strip() for v in table.column(schema.record.record_id).to_pylist()])
        position = given.get_indexer(ids[rows])
        if (position < 0).any():
            raise InputError("truth input does not hold every record_id of its encoded file", path=source)
        for f in names:
            column = table.column(schema.field(f).column).combine_chunks()
            values = np.array(NORMALISERS["person_name"](column).values.to_pylist(), dtype=object)
            names[f][rows] = values[position]
        if _has(schema, "date_of_birth"):
            column = table.column(schema.field("date_of_birth").column).combine_chunks()
            iso = pd.Series(NORMALISERS["date"](column).values.to_pylist(), dtype="object")
            years = pd.to_numeric(iso.str.slice(0, 4), errors="coerce").fillna(-1).astype(np.int64).to_numpy()
            year[rows] = years[position]
    return Truth(names, year)


def _has(schema, field_name: str) -> bool:
    return any(f.name == field_name for f in schema.fields)


def read_truth_inputs(corpus: Corpus, paths: list[str | Path]) -> Truth:
    schema = corpus.schema
    columns = [schema.record.record_id] + [schema.field(f).column for f in NAME_FIELDS if _has(schema, f)]
    if _has(schema, "date_of_birth"):
        columns.append(schema.field("date_of_birth").column)
    tables = [pa.concat_tables([b.table for b in iter_batches(p, columns)]) for p in paths]
    return truth_from_tables(corpus, tables, [str(p) for p in paths])


def persons_from_frame(corpus: Corpus, frame: pd.DataFrame, source: str) -> np.ndarray:
    """Person label per corpus row from (agency, record_id, person); -1 where unlinked."""
    frame = frame.rename(columns={"person_key": "person", "person_id": "person"})
    frame = frame.astype({"agency": str, "record_id": str})
    merged = _keys(corpus).merge(frame[["agency", "record_id", "person"]], on=["agency", "record_id"], how="left")
    if merged["person"].isna().all():
        raise InputError("persons file matches no record of the encoded files (agency, record_id)", path=source)
    codes, _ = pd.factorize(merged["person"])
    return codes.astype(np.int64)


def read_persons(corpus: Corpus, path: str | Path) -> np.ndarray:
    """Persons from a ``simlink link`` database or a CSV agency,record_id,person_id."""
    path = Path(path)
    if not path.exists():
        raise InputError("persons file not found", path=path)
    if path.suffix.lower() in (".duckdb", ".db"):
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            frame = con.execute("SELECT agency, record_id, person_key FROM event_person").df()
    else:
        frame = pd.read_csv(path, dtype=str)
        if not {"agency", "record_id"} <= set(frame.columns) or not ({"person_id", "person_key"} & set(frame.columns)):
            raise InputError("persons CSV needs columns agency,record_id,person_id", path=path)
    return persons_from_frame(corpus, frame, str(path))


def proxy_persons(corpus: Corpus) -> np.ndarray:
    """Without a linkage: distinct (date-of-birth, postcode, sex) encodings stand for persons."""
    parts = []
    for f in ("date_of_birth", "postcode", "sex"):
        for group in corpus.groups.get(f, [])[:1]:
            parts.append(pd.DataFrame(corpus.words(group)))
    if not parts:
        return np.arange(corpus.rows)
    return pd.util.hash_pandas_object(pd.concat(parts, axis=1, ignore_index=True), index=False).to_numpy().astype(np.int64)
