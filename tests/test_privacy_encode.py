"""No raw identifier leaves `encode`: scan every value, the metadata and the console output."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from conftest import AGENCY_ROWS
from leakscan import Written
from simlink.cli import main


def _identifier_strings() -> set[str]:
    """Every input name, date of birth and postcode, raw and in the forms a leak could take."""
    found: set[str] = set()
    for _, given, family, dob, _, postcode, _, nhs in AGENCY_ROWS:
        for value in (given, family, dob, postcode, nhs):
            if len(value.strip()) >= 3:
                found |= {value, value.lower(), value.upper(), value.replace(" ", "")}
        for part in (given + " " + family).replace("-", " ").replace(".", " ").split():
            if len(part) >= 3 and part.lower() not in {"dr"}:
                found |= {part, part.lower(), part.upper()}
    return found


def test_encoded_output_holds_no_identifier(agency_csv, key_file, tmp_path) -> None:
    out = tmp_path / "police.parquet"
    result = CliRunner().invoke(main, ["encode", str(agency_csv), "--key", str(key_file), "--agency", "police", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    written = Written()
    for column in table.columns:
        written.add(column.to_pylist())
    metadata = pq.ParquetFile(out).metadata.metadata
    metadata_text = " ".join(k.decode("utf-8", "replace") + " " + v.decode("utf-8", "replace") for k, v in metadata.items())
    assert json.loads(metadata[b"simlink"])["rows"] == len(AGENCY_ROWS)  # the scan reads real content
    raw_file = out.read_bytes().decode("latin-1")
    identifiers = _identifier_strings()
    assert len(identifiers) > 50
    assert not written.leaked(identifiers), "identifier found in an output value"
    for identifier in identifiers:
        assert identifier not in metadata_text, "identifier found in the file metadata"
        assert identifier not in raw_file, "identifier found in the file bytes"
        assert identifier not in result.output, "identifier found in the console output"
    # The scan is not vacuous: it does see the values that are meant to be there.
    assert written.leaked({"P001", "police"}) == ["P001", "police"]


def test_error_messages_hold_no_identifier(tmp_path, key_file) -> None:
    from conftest import write_csv

    rows = [("A1", "Bartholomew", "Featherstonehaugh", "31/02/1980", "M", "SW1A 1AA", "2025-01-01", "")]
    path = write_csv(tmp_path / "leaky.csv", rows)
    result = CliRunner().invoke(main, ["encode", str(path), "--key", str(key_file), "--agency", "police",
                                       "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2
    assert "row 1" in result.output and "date_of_birth" in result.output
    for value in ("Bartholomew", "Featherstonehaugh", "31/02/1980", "1980", "SW1A"):
        assert value not in result.output


def test_leak_scan_compares_numbers_whole_and_text_as_substrings() -> None:
    written = Written()
    written.add([1234199206085678, 19800214, "id P001 seen", None, True])
    assert written.leaked({"19920608", "19800214", "P001", "P00", "True", "None"}) == ["19800214", "P00", "P001", "True"]
