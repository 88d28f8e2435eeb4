"""Shared fixtures: a small agency file with realistic identifiers, and a secret key."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from simlink.agency.keys import generate_key_file

AGENCY_ROWS = [
    # record_id, given, family, dob, sex, postcode, contact_date, nhs_number
    ("P001", "Mohammed", "Hussain", "14/02/1986", "M", "B11 1AA", "2025-01-03", "9434765919"),
    ("P002", "Siobhan", "O'Sullivan", "1991-07-30", "F", "LS6 2QT", "03/02/2025", ""),
    ("P003", "Mary-Jane", "Smith-Jones", "3 Mar 1967", "female", "sw1a 2aa", "2025-02-10", ""),
    ("P004", "Dr. Ruairidh", "MacDonald", "01-12-79", "1", "EH1 1YZ", "2025-03-01", "4010232137"),
    ("P005", "Zoë", "Kowalczyk", "19990405", "2", "M14 5TP", "2025-03-15", ""),
    ("P006", "Oluwaseun", "Adeyemi", "22/11/2001", "male", "SE15 4QN", "2025-04-02", ""),
    ("P007", "Priya", "Patel", "08/08/1975", "F", "LE4 6AG", "2025-04-20", ""),
    ("P008", "Tomasz", "Wiśniewski", "15 Jan 1988", "M", "NG7 2FT", "2025-05-05", ""),
    ("P009", "Bethany", "Llewellyn", "1995-01-09", "F", "CF10 3AT", "2025-05-06", ""),
    ("P010", "Connor", "McAllister", "27/06/1983", "M", "BT9 5AB", "2025-06-11", ""),
]
HEADER = ["record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "contact_date", "nhs_number"]


def write_csv(path: Path, rows, header=HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def agency_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "police.csv", AGENCY_ROWS)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return generate_key_file(tmp_path / "secret.key")


@pytest.fixture
def other_key_file(tmp_path: Path) -> Path:
    return generate_key_file(tmp_path / "other.key")
