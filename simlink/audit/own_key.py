"""The attacker's own encodings: the public list encoded under the public schema with a key
of the attacker's own.

This tells the attacker, without the agencies' key, how the schema turns each listed name
into a popcount (after undoing balancing the same way as on the agencies' files) and how
Dice similarity behaves between names, so the similarity attack can choose its cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from simlink.agency.bloom import unpack
from simlink.audit.encoded import Corpus, FilterGroup, corpus_from_tables
from simlink.audit.structure import unbalance

OWN_KEY = bytes(range(101, 133))
FILLERS = {"date": "1980-06-15", "sex": "F", "uk_postcode": "LS1 4AP", "nhs_number": "", "person_name": "smith",
           "text": "x"}


@dataclass(frozen=True)
class OwnEncoding:
    """The list's names and, per stored filter of the field, their bits (balancing undone)."""

    names: list[str]
    bits: dict[str, np.ndarray]  # filter name -> (names, bits) bool

    def popcount(self, group: FilterGroup) -> np.ndarray:
        return self.bits[group.name].sum(axis=1)


def encode_list(corpus: Corpus, field_name: str, names: list[str], key: bytes = OWN_KEY) -> OwnEncoding:
    """Encode ``names`` in field ``field_name`` (other fields at fixed plausible values)."""
    from simlink.agency.encode import Encoder

    schema = corpus.schema
    n = len(names)
    columns: dict[str, pa.Array] = {schema.record.record_id: pa.array([f"r{i}" for i in range(n)]),
                                    schema.record.contact_date: pa.array(["2024-01-01"] * n)}
    for spec in schema.fields:
        value = names if spec.name == field_name else [FILLERS.get(spec.normaliser, "")] * n
        columns[spec.column] = pa.array(value, pa.string())
    if schema.record.service:
        columns[schema.record.service] = pa.array(["attacker"] * n)
    table = Encoder(schema, key, "attacker", strict=False).encode_table(pa.table(columns))
    own = corpus_from_tables([table], schema, corpus.manifest)
    bits = {}
    for group in corpus.groups.get(field_name, []):
        raw = unpack(own.words(group))
        bits[group.name] = unbalance(raw)[0]
    return OwnEncoding(list(names), bits)
