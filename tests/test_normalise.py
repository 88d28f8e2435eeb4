"""Normalisation of the identifiers UK agencies actually record."""

from __future__ import annotations

import pyarrow as pa
import pytest

from simlink.agency import normalise

NAME_CASES = [
    ("John", "john"),
    ("  JOHN  ", "john"),
    ("Mr John", "john"),
    ("Dr. Ruairidh", "ruairidh"),
    ("Mrs. Mary-Jane", "mary jane"),
    ("Smith-Jones", "smith jones"),
    ("Smith - Jones", "smith jones"),
    ("O'Brien", "obrien"),
    ("O’Brien", "obrien"),
    ("Mc Donald", "mcdonald"),
    ("Mac Donald", "macdonald"),
    ("McAllister", "mcallister"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Wiśniewski", "wisniewski"),
    ("J.", "j"),
    ("J. R.", "j r"),
    ("Miss", "miss"),  # a title alone is kept: it may be the only thing recorded
    ("John Smith Jr", "john smith"),
    ("unknown", None),
    ("", None),
    ("-", None),
]


@pytest.mark.parametrize(("raw", "expected"), NAME_CASES)
def test_person_name(raw: str, expected: str | None) -> None:
    assert normalise.person_name(pa.array([raw])).values.to_pylist() == [expected]


DATE_CASES = [
    ("1980-05-12", "1980-05-12"),
    ("1980-5-2", "1980-05-02"),
    ("12/05/1980", "1980-05-12"),  # day first: UK practice
    ("2/5/1980", "1980-05-02"),
    ("12-05-1980", "1980-05-12"),
    ("12.05.1980", "1980-05-12"),
    ("12-05-80", "1980-05-12"),
    ("01/02/05", "2005-02-01"),  # two-digit years: latest century not in the future
    ("3 Mar 1967", "1967-03-03"),
    ("3rd March 1967", "1967-03-03"),
    ("03-MAR-67", "1967-03-03"),
    ("5 Sept 2001", "2001-09-05"),
    ("19800512", "1980-05-12"),
    ("1980-05-12 00:00:00", "1980-05-12"),
    ("1980-05-12T00:00:00", "1980-05-12"),
    ("29/02/2000", "2000-02-29"),
]


@pytest.mark.parametrize(("raw", "expected"), DATE_CASES)
def test_date(raw: str, expected: str) -> None:
    result = normalise.date(pa.array([raw]), pivot_year=2026)
    assert result.values.to_pylist() == [expected]
    assert not result.invalid[0]


@pytest.mark.parametrize("raw", ["31/02/1980", "29/02/1900", "13/13/1980", "yesterday", "12/05", "1980"])
def test_bad_dates_are_invalid_not_guessed(raw: str) -> None:
    result = normalise.date(pa.array([raw]))
    assert result.values.to_pylist() == [None]
    assert result.invalid[0]


def test_missing_date_is_missing_not_invalid() -> None:
    result = normalise.date(pa.array(["", None, "   "]))
    assert result.values.to_pylist() == [None, None, None]
    assert not result.invalid.any()


@pytest.mark.parametrize(
    ("raw", "expected", "invalid"),
    [("M", "m", False), ("male", "m", False), ("1", "m", False), ("F", "f", False), ("Female", "f", False),
     ("2", "f", False), ("U", None, False), ("unknown", None, False), ("9", None, False), ("0", None, False),
     ("", None, False), ("q", None, True), ("yes", None, True)],
)
def test_sex(raw: str, expected: str | None, invalid: bool) -> None:
    result = normalise.sex(pa.array([raw]))
    assert result.values.to_pylist() == [expected]
    assert bool(result.invalid[0]) is invalid


@pytest.mark.parametrize(
    ("raw", "expected", "invalid"),
    [("SW1A 1AA", "SW1A 1AA", False), ("sw1a1aa", "SW1A 1AA", False), (" m1 1ae ", "M1 1AE", False),
     ("B33 8TH", "B33 8TH", False), ("cr2 6xh", "CR2 6XH", False), ("DN55 1PT", "DN55 1PT", False),
     ("ZZ99 3VZ", None, True),  # NHS pseudo-postcode for no fixed abode: must not link people
     ("NFA", None, True), ("SW1A 1A", None, True),  # starts like a UK postcode: a typo, unusable
     # Postcodes of other countries are kept as text (issue 11): Australia, US ZIP+4, Netherlands.
     ("12345", "12345", False), ("4223", "4223", False), ("90210-1234", "90210 1234", False),
     ("1011 ab", "1011 AB", False), ("", None, False)],
)
def test_uk_postcode(raw: str, expected: str | None, invalid: bool) -> None:
    result = normalise.uk_postcode(pa.array([raw]))
    assert result.values.to_pylist() == [expected]
    assert bool(result.invalid[0]) is invalid


def test_non_uk_postcodes_are_flagged() -> None:
    result = normalise.uk_postcode(pa.array(["4223", "SW1A 1AA", "N/A", None]))
    assert result.flags["not_uk"].tolist() == [True, False, False, False]


def test_implausible_birth_dates_are_unusable() -> None:
    import datetime as dt

    values = pa.array(["1899-12-31", "1900-01-01", "2026-06-01", "2026-06-02", "01/01/2030"])
    result = normalise.date(values, today=dt.date(2026, 6, 1))
    assert result.values.to_pylist() == [None, "1900-01-01", "2026-06-01", None, None]
    assert result.invalid.tolist() == [True, False, False, True, True]
    assert result.flags["implausible"].tolist() == [True, False, False, True, True]
    assert normalise.date(values, plausible_only=False).values.to_pylist()[0] == "1899-12-31"


def test_nhs_number() -> None:
    result = normalise.nhs_number(pa.array(["943 476 5919", "943-476-5919", "12345", ""]))
    assert result.values.to_pylist() == ["9434765919", "9434765919", None, None]
    assert result.invalid.tolist() == [False, False, True, False]
    assert normalise.nhs_check_digit_ok("9434765919")
    assert not normalise.nhs_check_digit_ok("9434765918")


def test_text() -> None:
    assert normalise.text(pa.array(["  Héllo   World "])).values.to_pylist() == ["hello world"]
