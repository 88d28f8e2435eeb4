"""Audit worlds from ``simlink synth`` folders, for tests and benchmarks.

``encode_world`` encodes a folder's four agency files under a schema and key, in memory, and
returns the corpus with its truth and true persons; ``reference_from_world`` turns another
seed's folder into the attacker's public list (one entry per person, national and by year
of birth) — a list from a different sample of the same kind of population.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from simlink.agency.encode import Encoder
from simlink.agency.normalise import NORMALISERS
from simlink.audit.encoded import Corpus, corpus_from_tables
from simlink.audit.reference import Reference, reference_from_people
from simlink.audit.truth import Truth, persons_from_frame, truth_from_tables
from simlink.schema import Schema
from simlink.synth import AGENCIES

COLUMNS = ("record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "contact_date", "nhs_number")


def read_inputs(folder: str | Path) -> list[pa.Table]:
    options = pacsv.ConvertOptions(column_types={c: pa.string() for c in COLUMNS})
    return [pacsv.read_csv(Path(folder) / f"{a}.csv", convert_options=options) for a in AGENCIES]


def encode_world(folder: str | Path, schema: Schema, secret: bytes) -> tuple[Corpus, Truth, np.ndarray]:
    tables = read_inputs(folder)
    encoded = [Encoder(schema, secret, a).encode_table(t) for a, t in zip(AGENCIES, tables)]
    corpus = corpus_from_tables(encoded, schema, names=list(AGENCIES))
    truth = truth_from_tables(corpus, tables, list(AGENCIES))
    persons = persons_from_frame(corpus, pd.read_csv(Path(folder) / "truth.csv", dtype=str), "truth.csv")
    return corpus, truth, persons


def reference_from_world(folder: str | Path) -> Reference:
    """One entry per true person of the folder: their first record's names and birth year."""
    frames = []
    for agency, table in zip(AGENCIES, read_inputs(folder)):
        frames.append(pd.DataFrame({
            "agency": agency, "record_id": table.column("record_id").to_numpy(zero_copy_only=False),
            "given": NORMALISERS["person_name"](table.column("given_name").combine_chunks()).values.to_pylist(),
            "family": NORMALISERS["person_name"](table.column("family_name").combine_chunks()).values.to_pylist(),
            "dob": NORMALISERS["date"](table.column("date_of_birth").combine_chunks()).values.to_pylist()}))
    truth = pd.read_csv(Path(folder) / "truth.csv", dtype=str)
    people = pd.concat(frames).merge(truth, on=["agency", "record_id"]).drop_duplicates("person_id")
    years = pd.to_numeric(people["dob"].str.slice(0, 4), errors="coerce").fillna(-1).astype(int).tolist()
    return reference_from_people(people["given"].tolist(), people["family"].tolist(), years,
                                 f"another synth population ({folder})")
