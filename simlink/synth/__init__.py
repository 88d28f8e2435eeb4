"""Synthetic crisis-contact data with a known answer: ``simlink synth``.

Public API:

* :class:`SynthConfig`, :func:`write_synth` — generate agency CSVs and ``truth.csv``;
* :func:`iter_blocks` — the same world in memory, with the errors applied per record;
* :class:`ErrorRates`, :func:`preset` — error rates per agency (``low``/``medium``/``high``);
* :func:`truth_events` — the true events with the true person, for the count measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from simlink.errors import InputError
from simlink.agency.normalise import date as normalise_date
from simlink.synth.contacts import SERVICES, ContactModel
from simlink.synth.generator import Block, SynthConfig, iter_blocks
from simlink.synth.profiles import AGENCIES, ERROR_BIT, ERROR_NAMES, LEVELS, STYLES, ErrorRates, preset
from simlink.synth.writer import TRUTH_FILE, SynthSummary, agency_file, write_synth

__all__ = [
    "AGENCIES", "ERROR_BIT", "ERROR_NAMES", "LEVELS", "SERVICES", "STYLES", "Block", "ContactModel",
    "ErrorRates", "SynthConfig", "SynthSummary", "iter_blocks", "preset", "read_truth", "truth_events",
    "write_synth",
]


def _read_strings(path: Path, columns: list[str]) -> pa.Table:
    if not path.exists():
        raise InputError("file not found", path=path)
    types = {c: pa.string() for c in columns}
    convert = pacsv.ConvertOptions(column_types=types, include_columns=columns, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, KeyError):
        raise InputError(f"cannot read the columns {', '.join(columns)}", path=path) from None


def read_truth(path: str | Path) -> pd.DataFrame:
    """The answer key: agency, record_id, person_id (one row per record)."""
    path = Path(path)
    table = _read_strings(path, ["agency", "record_id", "person_id"])
    truth = table.to_pandas()
    if truth["person_id"].isna().any() or truth["record_id"].isna().any():
        raise InputError("truth has rows without record_id or person_id", path=path)
    duplicated = int(truth.duplicated(["agency", "record_id"]).sum())
    if duplicated:
        raise InputError(f"{duplicated} records appear more than once in the truth", path=path)
    truth["person_id"] = truth["person_id"].astype("int64")
    return truth


def truth_events(out_dir: str | Path) -> pd.DataFrame:
    """True events of a ``simlink synth`` folder: agency, record_id, service, contact_date, person_key.

    ``person_key`` is the true person id and ``service`` the agency, so the result can be
    passed to the counts measures to get the true counts.
    """
    out = Path(out_dir)
    truth = read_truth(out / TRUTH_FILE)
    frames = []
    for agency in AGENCIES:
        table = _read_strings(agency_file(out, agency), ["record_id", "contact_date"])
        encoded = table.column("contact_date").combine_chunks().dictionary_encode()
        parsed = normalise_date(encoded.dictionary, plausible_only=False).values
        days = pd.to_datetime(pd.Series(parsed.to_pylist(), dtype="object"), format="%Y-%m-%d").to_numpy()
        frames.append(pd.DataFrame({
            "agency": agency,
            "record_id": table.column("record_id").to_numpy(zero_copy_only=False),
            "service": agency,
            "contact_date": days[encoded.indices.to_numpy(zero_copy_only=False)],
        }))
    events = pd.concat(frames, ignore_index=True)
    merged = events.merge(truth, on=["agency", "record_id"], how="left", validate="one_to_one")
    unmatched = int(merged["person_id"].isna().sum())
    if unmatched:
        raise InputError(f"{unmatched} agency records are missing from the truth", path=out / TRUTH_FILE)
    if len(truth) != len(events):
        raise InputError(f"truth has {len(truth)} rows but the agency files hold {len(events)} records",
                         path=out / TRUTH_FILE)
    merged["person_key"] = merged.pop("person_id").astype(np.int64)
    return merged[["agency", "record_id", "service", "contact_date", "person_key"]]
