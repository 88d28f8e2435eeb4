"""Questionable values are counted, not silently accepted; extra fields by name (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import AGENCY_ROWS, HEADER, write_csv
from simlink.agency.encode import MAX_VALUE_CHARS, encode_file, read_manifest
from simlink.agency.keys import read_key_file
from simlink.cli import main
from simlink.errors import KeyFileError, SimlinkError
from simlink.schema import load_schema, with_extra_fields


def _encode(tmp_path: Path, key_file: Path, rows, header=HEADER, **kwargs):
    return encode_file(write_csv(tmp_path / "in.csv", rows, header), tmp_path / "out.parquet",
                       secret=read_key_file(key_file), agency="police", schema=kwargs.pop("schema", load_schema()),
                       strict=False, **kwargs)


def test_questionable_values_are_counted_in_the_summary(tmp_path, key_file) -> None:
    rows = [list(r) for r in AGENCY_ROWS]
    rows[0][1] = "A" * 10_000_000          # a runaway cell: cut, counted
    rows[1][3] = "01/01/2199"              # date of birth in the future
    rows[2][3] = "1850-05-05"              # before 1900
    rows[3][5] = "4223"                    # an Australian postcode: kept as text
    header = HEADER + ["town"]
    rows = [r + ["Leeds"] for r in rows]
    summary = _encode(tmp_path, key_file, rows, header)
    given, dob, postcode = (summary.fields[n] for n in ("given_name", "date_of_birth", "postcode"))
    assert given.truncated == 1 and given.missing == 0
    assert dob.invalid == 2 and dob.flagged["implausible"] == 2 and dob.missing == 2
    assert postcode.flagged["not_uk"] == 1 and postcode.invalid == 0 and postcode.missing == 0
    assert summary.ignored_columns == ["town"]
    line = summary.line()
    assert f"values over {MAX_VALUE_CHARS} characters cut: given_name 1" in line
    assert "dates in the future or before 1900 (unusable): date_of_birth 2" in line
    assert "postcodes not UK-shaped, encoded as text: postcode 1" in line
    assert "input columns not in the schema, ignored: town" in line
    assert "Leeds" not in line and "4223" not in line
    assert read_manifest(tmp_path / "out.parquet")["fields"]["date_of_birth"]["flagged"] == {"implausible": 2}


def test_extra_field_is_encoded_and_changes_the_fingerprint(tmp_path, key_file) -> None:
    base = load_schema()
    schema = with_extra_fields(base, ["address_line=text", "town"])
    assert [f.name for f in schema.fields][-2:] == ["address_line", "town"]
    assert schema.fingerprint != base.fingerprint
    extra = schema.field("address_line")
    assert extra.normaliser == "text" and extra.tokens.phonetic == "" and extra.bits == base.field("given_name").bits
    rows = [list(r) + [f"{i} high street", "leeds"] for i, r in enumerate(AGENCY_ROWS)]
    _encode(tmp_path, key_file, rows, HEADER + ["address_line", "town"], schema=schema)
    manifest = read_manifest(tmp_path / "out.parquet")
    assert manifest["schema_fingerprint"] == schema.fingerprint
    assert manifest["fields"]["address_line"]["missing"] == 0


def test_cli_extra_field_and_mismatch_at_linkage(tmp_path, key_file) -> None:
    rows = [list(r) + [f"{i} high street"] for i, r in enumerate(AGENCY_ROWS)]
    csv = write_csv(tmp_path / "in.csv", rows, HEADER + ["address_line"])
    runner = CliRunner()
    with_extra = ["encode", str(csv), "--key", str(key_file), "--agency", "police", "-o", str(tmp_path / "a.parquet"),
                  "--extra-field", "address_line=text"]
    result = runner.invoke(main, with_extra)
    assert result.exit_code == 0, result.output
    assert "ignored" not in result.stdout
    plain = ["encode", str(csv), "--key", str(key_file), "--agency", "ed", "-o", str(tmp_path / "b.parquet")]
    result = runner.invoke(main, plain)
    assert result.exit_code == 0 and "input columns not in the schema, ignored: address_line" in result.stdout
    result = runner.invoke(main, ["link", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"),
                                  "-o", str(tmp_path / "l.duckdb")])
    assert result.exit_code == 2 and "schema fingerprints differ" in result.stderr


@pytest.mark.parametrize("extra", ["Address=text", "town=soundex", "given_name=person_name", "=text"])
def test_bad_extra_fields_are_refused(extra: str) -> None:
    with pytest.raises(SimlinkError, match="--extra-field"):
        with_extra_fields(load_schema(), [extra])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_others_can_read_is_refused(key_file: Path, mode: int) -> None:
    key_file.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}"):
        read_key_file(key_file)
    key_file.chmod(0o600)
    assert len(read_key_file(key_file)) == 32
