"""Bad input gets one clear line naming file, row and column — never the value — and no output."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import AGENCY_ROWS, HEADER, write_csv
from simlink.cli import main


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _encode_args(input_path: Path, key: Path, out: Path, *extra: str) -> list[str]:
    return ["encode", str(input_path), "--key", str(key), "--agency", "police", "-o", str(out), *extra]


def _assert_clean_failure(result, out: Path, *must_mention: str, must_not_mention: tuple[str, ...] = ()) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("simlink: error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    for text in must_mention:
        assert text in result.output, (text, result.output)
    for text in must_not_mention:
        assert text not in result.output, text
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_missing_required_column(tmp_path, key_file) -> None:
    rows = [r[:4] + r[5:] for r in AGENCY_ROWS]  # no sex column
    path = write_csv(tmp_path / "in.csv", rows, [h for h in HEADER if h != "sex"])
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "in.csv", "column 'sex'", "missing")


def test_empty_file(tmp_path, key_file) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "empty.csv", "empty")


def test_header_only_file(tmp_path, key_file) -> None:
    path = write_csv(tmp_path / "header.csv", [])
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "header.csv", "no records")


def test_non_utf8_file(tmp_path, key_file) -> None:
    path = tmp_path / "latin1.csv"
    lines = [",".join(HEADER)] + [",".join(r) for r in AGENCY_ROWS[:3]]
    lines.append("P099,Zoë,Brontë,01/01/1990,F,M1 1AE,2025-01-01,")
    path.write_bytes("\n".join(lines).encode("latin-1"))
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "latin1.csv", "row 4", "UTF-8",
                          must_not_mention=("Bront", "Zo"))


def test_binary_file(tmp_path, key_file) -> None:
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "image.csv", "binary")


def test_not_a_parquet_file(tmp_path, key_file) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("record_id,given_name\n1,Ann\n")
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "fake.parquet", "Parquet")


@pytest.mark.parametrize(("row", "column", "value", "also_secret"), [
    (7, "date_of_birth", "31/02/1975", ("Priya", "Patel")),
    (3, "contact_date", "sometime", ()),
])
def test_unparseable_date(tmp_path, key_file, row: int, column: str, value: str, also_secret: tuple[str, ...]) -> None:
    rows = list(AGENCY_ROWS)
    position = HEADER.index(column)
    rows[row - 1] = rows[row - 1][:position] + (value,) + rows[row - 1][position + 1:]
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "in.csv", f"row {row}", f"column '{column}'",
                          must_not_mention=(value, *also_secret))


def test_unknown_sex_code(tmp_path, key_file) -> None:
    rows = list(AGENCY_ROWS)
    rows[4] = rows[4][:4] + ("Q",) + rows[4][5:]
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "row 5", "column 'sex'")


def test_invalid_values_as_missing_when_asked(tmp_path, key_file) -> None:
    rows = list(AGENCY_ROWS)
    rows[4] = rows[4][:4] + ("Q",) + rows[4][5:]
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.parquet"
    result = _run(_encode_args(path, key_file, out, "--invalid", "missing"))
    assert result.exit_code == 0, result.output
    assert "unusable values encoded as missing: sex 1" in result.output


def test_malformed_csv_row(tmp_path, key_file) -> None:
    path = tmp_path / "ragged.csv"
    lines = [",".join(HEADER)] + [",".join(r) for r in AGENCY_ROWS[:5]] + ["P777,Secretname,Only"]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "ragged.csv", "row 6", "number of fields",
                          must_not_mention=("Secretname",))


def test_duplicate_record_id(tmp_path, key_file) -> None:
    rows = list(AGENCY_ROWS) + [("P003",) + AGENCY_ROWS[0][1:]]
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(path, key_file, out)), out, "row 11", "column 'record_id'", "not unique")


def test_missing_key_file(tmp_path, agency_csv) -> None:
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(agency_csv, tmp_path / "nokey", out)), out, "nokey", "not found")


@pytest.mark.parametrize(("content", "message"), [
    (b"ab" * 16, "wrong length"),
    (b"not a key at all", "not a hexadecimal key"),
    (b"\xff\xfe\x00", "not a hexadecimal key"),
])
def test_bad_key_file(tmp_path, agency_csv, content: bytes, message: str) -> None:
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    out = tmp_path / "out.parquet"
    _assert_clean_failure(_run(_encode_args(agency_csv, key, out)), out, "bad.key", message)


def test_existing_output_needs_overwrite(tmp_path, agency_csv, key_file) -> None:
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    result = _run(_encode_args(agency_csv, key_file, out))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_bytes() == b"precious"
    result = _run(_encode_args(agency_csv, key_file, out, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"precious"


def test_failed_run_keeps_the_previous_output(tmp_path, agency_csv, key_file) -> None:
    """--overwrite with bad input must not destroy the good file already there."""
    out = tmp_path / "out.parquet"
    assert _run(_encode_args(agency_csv, key_file, out)).exit_code == 0
    good = out.read_bytes()
    rows = list(AGENCY_ROWS)
    rows[1] = rows[1][:3] + ("99/99/1999",) + rows[1][4:]
    result = _run(_encode_args(write_csv(tmp_path / "bad.csv", rows), key_file, out, "--overwrite"))
    assert result.exit_code == 2
    assert out.read_bytes() == good


def test_bad_agency_name(tmp_path, agency_csv, key_file) -> None:
    out = tmp_path / "out.parquet"
    result = _run(["encode", str(agency_csv), "--key", str(key_file), "--agency", "Police Dept!", "-o", str(out)])
    assert result.exit_code == 2 and "agency name" in result.output
    assert not out.exists()


def test_success_prints_one_summary_line(tmp_path, agency_csv, key_file) -> None:
    out = tmp_path / "out.parquet"
    result = _run(_encode_args(agency_csv, key_file, out))
    assert result.exit_code == 0, result.output
    assert f"encoded {len(AGENCY_ROWS)} rows for agency 'police'" in result.output
    assert "rows with a missing field" in result.output
