"""Keyed Bloom-filter encoding: determinism, key dependence, similarity, missing values."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import AGENCY_ROWS, HEADER, write_csv
from simlink.agency.bloom import dice, unpack
from simlink.agency.encode import Encoder, encode_file, pop_column, read_manifest, words_columns
from simlink.errors import KeyFileError, OutputExistsError
from simlink.agency.keys import generate_key_file, key_check_value, read_key_file
from simlink.schema import load_schema, schema_from_dict

SCHEMA = load_schema()
FILTER_COLUMNS = [c for copy in SCHEMA.copies for c in [*words_columns(copy.prefix, copy.words), pop_column(copy.prefix)]]


def _encode(csv_path: Path, key_path: Path, out: Path, agency: str = "police", schema=SCHEMA) -> pa.Table:
    encode_file(csv_path, out, secret=read_key_file(key_path), agency=agency, schema=schema)
    return pq.read_table(out)


def _filters(table: pa.Table, field: str) -> np.ndarray:
    """The field's first stored copy (format 2: e.g. the given name salted by date of birth)."""
    copy = SCHEMA.field(field).copies[0]
    words = np.column_stack([table.column(c).to_numpy() for c in words_columns(copy.prefix, copy.words)])
    return unpack(words)


def _unhardened_schema():
    """The default schema with the names unsalted: the similarity a name's filter starts from."""
    doc = SCHEMA.to_dict()
    for f in doc["fields"]:
        f["salt_by"] = []
    return schema_from_dict(doc)


def _name_filters(names: list[str], secret: bytes = b"s" * 32, field: str = "family_name",
                  schema=None) -> np.ndarray:
    schema = schema or _unhardened_schema()
    n = len(names)
    table = pa.table({
        "record_id": [str(i) for i in range(n)], "contact_date": ["2025-01-01"] * n,
        "given_name": names if field == "given_name" else ["x"] * n,
        "family_name": names if field == "family_name" else ["x"] * n,
        "date_of_birth": [""] * n, "sex": [""] * n, "postcode": [""] * n,
    })
    encoded = Encoder(schema, secret, "police").encode_table(table)
    copy = schema.field(field).copies[0]
    words = np.column_stack([encoded.column(c).to_numpy() for c in words_columns(copy.prefix, copy.words)])
    return unpack(words)


def test_same_key_and_schema_give_byte_identical_files(agency_csv, key_file, tmp_path) -> None:
    _encode(agency_csv, key_file, tmp_path / "a.parquet")
    _encode(agency_csv, key_file, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_other_key_gives_other_filters_and_tokens(agency_csv, key_file, other_key_file, tmp_path) -> None:
    a = _encode(agency_csv, key_file, tmp_path / "a.parquet")
    b = _encode(agency_csv, other_key_file, tmp_path / "b.parquet")
    for field in ("given_name", "family_name", "date_of_birth", "postcode"):
        assert not np.array_equal(_filters(a, field), _filters(b, field))
    assert a.column("blk__dob").to_pylist() != b.column("blk__dob").to_pylist()
    assert read_manifest(tmp_path / "a.parquet")["key_check"] != read_manifest(tmp_path / "b.parquet")["key_check"]


def test_equal_identifiers_written_differently_get_equal_filters(key_file, tmp_path) -> None:
    rows = [
        ("A1", "John", "O'Brien", "12/05/1980", "M", "sw1a1aa", "2025-01-01", "943 476 5919"),
        ("A2", "  JOHN ", "Obrien", "1980-05-12", "male", "SW1A 1AA", "01/01/2025", "9434765919"),
    ]
    table = _encode(write_csv(tmp_path / "in.csv", rows), key_file, tmp_path / "out.parquet")
    for field in ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number"):
        f = _filters(table, field)
        assert np.array_equal(f[0], f[1]), field
    blocks = [c for c in table.column_names if c.startswith("blk__")]
    assert all(table.column(c)[0] == table.column(c)[1] for c in blocks)


def test_unordered_names_token_survives_a_name_swap(key_file, tmp_path) -> None:
    rows = [
        ("A1", "Priya", "Shah", "12/05/1980", "F", "LE1 7RH", "2025-01-01", ""),
        ("A2", "Shah", "Priya", "", "F", "", "2025-02-01", ""),   # swapped, no date of birth or postcode
        ("A3", "Priya", "Patel", "12/05/1980", "F", "LE1 7RH", "2025-03-01", ""),
    ]
    table = _encode(write_csv(tmp_path / "in.csv", rows), key_file, tmp_path / "out.parquet")
    names = table.column("blk__full_name").to_pylist()
    assert names[0] == names[1] != names[2]
    # The same key without `unordered` tells the swapped record apart.
    doc = SCHEMA.to_dict()
    next(b for b in doc["blocking"] if b["name"] == "full_name")["unordered"] = False
    ordered = _encode(write_csv(tmp_path / "in2.csv", rows), key_file, tmp_path / "ordered.parquet",
                      schema=schema_from_dict(doc)).column("blk__full_name").to_pylist()
    assert ordered[0] != ordered[1] and None not in ordered
    # Parts of another kind keep their place: names swapped, same sex -> same token.
    next(b for b in doc["blocking"] if b["name"] == "full_name").update(
        parts=["given_name:soundex", "family_name:soundex", "sex:value"], unordered=True)
    with_sex = _encode(write_csv(tmp_path / "in3.csv", rows), key_file, tmp_path / "sex.parquet",
                       schema=schema_from_dict(doc)).column("blk__full_name").to_pylist()
    assert with_sex[0] == with_sex[1] != with_sex[2] and with_sex[0] != names[0]


def test_dice_high_for_near_identical_names_low_for_unrelated() -> None:
    """MinHash copies: the share of agreeing segments tracks the names' token overlap; an
    unrelated pair agrees only by chance (1 in 8 segments)."""
    names = ["catherine", "katherine", "catherin", "mohammed", "muhammad", "smith", "smyth", "wojcik"]
    f = _name_filters(names)
    assert dice(f[0], f[1]) > 0.6  # catherine / katherine
    assert dice(f[0], f[2]) > 0.7  # one letter dropped
    assert dice(f[3], f[4]) > 0.35  # mohammed / muhammad
    assert dice(f[5], f[6]) > 0.45  # smith / smyth
    unrelated = [dice(f[i], f[j]) for i, j in [(0, 3), (0, 5), (3, 7), (5, 7), (1, 4)]]
    assert max(unrelated) < 0.3, unrelated
    near = [dice(f[0], f[1]), dice(f[0], f[2]), dice(f[3], f[4]), dice(f[5], f[6])]
    assert min(near) > max(unrelated)


def test_name_copies_have_one_popcount_whatever_the_length() -> None:
    """Every name's filter has exactly one bit per segment: its popcount says nothing of its
    length (format-1 filters grew with the number of q-grams)."""
    f = _name_filters(["li", "christopher", "alexandra", "smith", "wojciechowska-kowalczyk"])
    spec = _unhardened_schema().field("family_name")
    assert (f.sum(axis=1) == spec.segments).all()
    segments = f.reshape(len(f), spec.segments, spec.bits // spec.segments)
    assert (segments.sum(axis=2) == 1).all()


def test_a_copy_is_unrelated_under_another_scope_value(key_file, tmp_path) -> None:
    """Same name, other date of birth: the name's copies share no more bits than chance."""
    rows = [("A1", "Mohammed", "Khan", "12/05/1980", "M", "LE1 7RH", "2025-01-01", ""),
            ("A2", "Mohammed", "Khan", "12/05/1981", "M", "LE2 7RH", "2025-01-02", ""),
            ("A3", "Mohammed", "Khan", "12/05/1980", "M", "LE9 9ZZ", "2025-01-03", "")]
    table = _encode(write_csv(tmp_path / "in.csv", rows), key_file, tmp_path / "out.parquet")
    by_dob = _filters(table, "given_name")
    assert np.array_equal(by_dob[0], by_dob[2])          # same scope value: identical
    assert dice(by_dob[0], by_dob[1]) < 0.35              # other scope value: chance level (~1/8)


def test_missing_optional_values_encode_as_empty_filters_and_are_counted(key_file, tmp_path) -> None:
    rows = [("A1", "", "Patel", "", "", "", "2025-01-01", ""), ("A2", "Asha", "Patel", "1/1/1990", "F", "LE4 6AG", "2025-01-02", "")]
    out = tmp_path / "out.parquet"
    summary = encode_file(write_csv(tmp_path / "in.csv", rows), out, secret=read_key_file(key_file),
                          agency="police", schema=SCHEMA)
    table = pq.read_table(out)
    assert table.num_rows == 2  # nothing dropped
    given = pop_column(SCHEMA.field("given_name").copies[0].prefix)
    assert table.column(given).to_pylist() == [0, table.column(given)[1].as_py()]
    assert table.column(given)[1].as_py() > 0
    assert _filters(table, "date_of_birth")[0].sum() == 0
    assert table.column("blk__dob")[0].as_py() is None and table.column("blk__dob")[1].as_py() is not None
    assert summary.rows == 2 and summary.rows_with_missing == 2  # nhs_number missing in both
    assert summary.fields["given_name"].missing == 1 and summary.fields["date_of_birth"].missing == 1
    assert "rows with a missing field: 2" in summary.line()


def test_absent_optional_column_is_allowed(key_file, tmp_path) -> None:
    rows = [r[:7] for r in AGENCY_ROWS]
    table = _encode(write_csv(tmp_path / "in.csv", rows, HEADER[:7]), key_file, tmp_path / "out.parquet")
    assert set(table.column(pop_column("nhs_number")).to_pylist()) == {0}


def test_invalid_values_can_be_encoded_as_missing_and_are_counted(key_file, tmp_path) -> None:
    rows = [("A1", "Ann", "Lee", "31/02/1980", "Q", "NFA", "2025-01-01", "12")]
    summary = encode_file(write_csv(tmp_path / "in.csv", rows), tmp_path / "out.parquet",
                          secret=read_key_file(key_file), agency="police", schema=SCHEMA, strict=False)
    assert {k: v.invalid for k, v in summary.fields.items() if v.invalid} == {
        "date_of_birth": 1, "sex": 1, "postcode": 1, "nhs_number": 1}


def test_manifest_carries_fingerprint_and_key_check_but_not_the_key(agency_csv, key_file, tmp_path) -> None:
    out = tmp_path / "out.parquet"
    _encode(agency_csv, key_file, out)
    manifest = read_manifest(out)
    secret = read_key_file(key_file)
    assert manifest["schema_fingerprint"] == SCHEMA.fingerprint
    assert manifest["key_check"] == key_check_value(secret)
    assert manifest["rows"] == len(AGENCY_ROWS) and manifest["agency"] == "police"
    raw = out.read_bytes()
    assert secret.hex().encode() not in raw and secret not in raw


def test_chunked_encoding_equals_single_chunk(agency_csv, key_file, tmp_path) -> None:
    secret = read_key_file(key_file)
    encode_file(agency_csv, tmp_path / "one.parquet", secret=secret, agency="police", schema=SCHEMA)
    big_rows = [(f"R{i}",) + AGENCY_ROWS[i % len(AGENCY_ROWS)][1:] for i in range(3000)]
    path = write_csv(tmp_path / "big.csv", big_rows)
    encode_file(path, tmp_path / "big1.parquet", secret=secret, agency="police", schema=SCHEMA, chunk_rows=1000)
    encode_file(path, tmp_path / "big2.parquet", secret=secret, agency="police", schema=SCHEMA, chunk_rows=100_000)
    a, b = pq.read_table(tmp_path / "big1.parquet"), pq.read_table(tmp_path / "big2.parquet")
    assert a.select(FILTER_COLUMNS).equals(b.select(FILTER_COLUMNS))
    one = pq.read_table(tmp_path / "one.parquet")
    assert a.slice(0, len(AGENCY_ROWS)).select(FILTER_COLUMNS).equals(one.select(FILTER_COLUMNS))


def test_parquet_input_matches_csv_input(agency_csv, key_file, tmp_path) -> None:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(agency_csv, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in HEADER}))
    pq.write_table(table, tmp_path / "in.parquet")
    a = _encode(agency_csv, key_file, tmp_path / "a.parquet")
    b = _encode(tmp_path / "in.parquet", key_file, tmp_path / "b.parquet")
    assert a.select(FILTER_COLUMNS).equals(b.select(FILTER_COLUMNS))


def test_keygen_is_private_and_never_overwrites(tmp_path) -> None:
    path = generate_key_file(tmp_path / "k.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(read_key_file(path)) == 32
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        generate_key_file(path)
    assert path.read_bytes() == before
    assert generate_key_file(tmp_path / "k2.key").read_bytes() != before


def test_wrong_key_length_is_refused(tmp_path) -> None:
    short = tmp_path / "short.key"
    short.write_text("ab" * 16)
    with pytest.raises(KeyFileError, match="wrong length"):
        read_key_file(short)
