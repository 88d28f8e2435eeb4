"""Linked counts on a hand-built linkage database: exact measures, CLI, errors, no identifiers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.counts import (
    DisclosurePolicy, MEASURE_NAMES, compute_measures, measures_from_db, release, write_report,
)

# Six people, 22 contacts. Expected values below were worked out by hand (see comments).
P = {i: 900000000000 + i for i in range(1, 7)}
CONTACTS = [
    # P1: 5 contacts over 364 days, 4 services -> repeat (5 in 365 days), not in 364 days.
    (P[1], "police", "2024-01-10"), (P[1], "police", "2024-01-10"),
    (P[1], "ambulance", "2024-03-01"), (P[1], "ed", "2024-06-30"),
    (P[1], "mental_health", "2025-01-08"),
    # P2: 5 police contacts, never 5 within a year -> not repeat.
    (P[2], "police", "2024-02-01"), (P[2], "police", "2024-02-15"),
    (P[2], "police", "2024-03-01"), (P[2], "police", "2024-05-01"),
    (P[2], "police", "2025-03-01"),
    # P3: ed+police, 3 contacts.
    (P[3], "ed", "2024-04-01"), (P[3], "ed", "2024-04-02"), (P[3], "police", "2024-04-03"),
    # P4: one contact.
    (P[4], "mental_health", "2024-05-05"),
    # P5: 6 contacts in 5 days, 4 services -> repeat from its 5th contact (2024-07-10).
    (P[5], "ambulance", "2024-07-07"), (P[5], "ambulance", "2024-07-08"),
    (P[5], "ed", "2024-07-08"), (P[5], "police", "2024-07-09"),
    (P[5], "mental_health", "2024-07-10"), (P[5], "ambulance", "2024-07-11"),
    # P6: two ed contacts across a year boundary.
    (P[6], "ed", "2024-12-31"), (P[6], "ed", "2025-01-01"),
]
RECORD_IDS = [f"RX7Q-{i:04d}-ZZ" for i in range(len(CONTACTS))]


def events_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "agency": [c[1] for c in CONTACTS], "record_id": RECORD_IDS,
        "service": [c[1] for c in CONTACTS],
        "contact_date": pd.to_datetime([c[2] for c in CONTACTS]).date,
        "person_key": [c[0] for c in CONTACTS]})


def write_linkage(path: Path, frame: pd.DataFrame) -> Path:
    con = duckdb.connect(str(path))
    con.register("f", frame)
    con.execute("CREATE TABLE events AS SELECT agency::VARCHAR AS agency, record_id::VARCHAR "
                "AS record_id, service::VARCHAR AS service, contact_date::DATE AS contact_date FROM f")
    con.execute("CREATE TABLE event_person AS SELECT agency::VARCHAR AS agency, record_id::VARCHAR "
                "AS record_id, person_key::BIGINT AS person_key FROM f")
    con.execute("CREATE TABLE run_metadata(key VARCHAR, value VARCHAR)")
    con.close()
    return path


@pytest.fixture()
def tiny_db(tmp_path: Path) -> Path:
    return write_linkage(tmp_path / "linkage.duckdb", events_frame())


def as_dict(df: pd.DataFrame, key: str) -> dict:
    return {str(r[key]): {k: v for k, v in r.items() if k != key} for r in df.to_dict("records")}


EXPECTED_TOTALS = {"contacts": 22, "people": 6, "repeat_people": 2, "repeat_contacts": 11}
EXPECTED_BY_SERVICE = {
    "ambulance": dict(contacts=4, people=2, repeat_people=2, repeat_contacts=4),
    "ed": dict(contacts=6, people=4, repeat_people=2, repeat_contacts=2),
    "mental_health": dict(contacts=3, people=3, repeat_people=2, repeat_contacts=2),
    "police": dict(contacts=9, people=4, repeat_people=2, repeat_contacts=3),
}
EXPECTED_BANDS = {"1": (1, 1), "2": (1, 2), "3-4": (1, 3), "5-9": (3, 16), "10-19": (0, 0),
                  "20+": (0, 0)}
EXPECTED_MONTHLY = {  # month: (contacts, people, repeat people)
    "2024-01": (2, 1, 0), "2024-02": (2, 1, 0), "2024-03": (2, 2, 0), "2024-04": (3, 1, 0),
    "2024-05": (2, 2, 0), "2024-06": (1, 1, 0), "2024-07": (6, 1, 1), "2024-08": (0, 0, 0),
    "2024-09": (0, 0, 0), "2024-10": (0, 0, 0), "2024-11": (0, 0, 0), "2024-12": (1, 1, 0),
    "2025-01": (2, 2, 1), "2025-02": (0, 0, 0), "2025-03": (1, 1, 0),
}


def check_exact(m: dict[str, pd.DataFrame]) -> None:
    assert list(m) == list(MEASURE_NAMES)
    assert dict(zip(m["totals"]["measure"], m["totals"]["count"])) == EXPECTED_TOTALS
    assert as_dict(m["by_service"], "service") == EXPECTED_BY_SERVICE
    su = as_dict(m["services_used"], "n_services")
    assert su == {"1": dict(people=3, repeat_people=0), "2": dict(people=1, repeat_people=0),
                  "3": dict(people=0, repeat_people=0), "4": dict(people=2, repeat_people=2)}
    combos = as_dict(m["combinations"], "combination")
    assert len(combos) == 15  # every non-empty subset of the 4 services, zeros included
    nonzero = {k: (v["people"], v["repeat_people"]) for k, v in combos.items() if v["people"]}
    assert nonzero == {"police": (1, 0), "mental_health": (1, 0), "ed": (1, 0),
                       "ed+police": (1, 0), "ambulance+ed+mental_health+police": (2, 2)}
    assert combos["ed+police"]["n_services"] == 2
    bands = as_dict(m["contact_bands"], "band")
    assert {k: (v["people"], v["contacts"]) for k, v in bands.items()} == EXPECTED_BANDS
    assert list(m["contact_bands"]["band"]) == list(EXPECTED_BANDS)
    monthly = as_dict(m["monthly"], "month")
    assert {k: (v["contacts"], v["people"], v["repeat_people"]) for k, v in monthly.items()} \
        == EXPECTED_MONTHLY
    assert list(m["monthly"]["month"]) == sorted(EXPECTED_MONTHLY)


def test_measures_exact_on_hand_built_linkage(tiny_db: Path) -> None:
    check_exact(measures_from_db(tiny_db))


def test_dataframe_path_runs_the_same_sql(tiny_db: Path) -> None:
    from_df = compute_measures(events_frame())
    check_exact(from_df)
    from_db = measures_from_db(tiny_db)
    for name in MEASURE_NAMES:
        pd.testing.assert_frame_equal(from_df[name], from_db[name])
    # A synthetic truth may key people by strings and give dates as strings.
    df = events_frame()
    df["person_key"] = "p" + df["person_key"].astype(str)
    df["contact_date"] = df["contact_date"].astype(str)
    check_exact(compute_measures(df))


def test_release_with_protection_off_is_exact(tiny_db: Path) -> None:
    rel = release(tiny_db, policy=DisclosurePolicy.unsafe())
    assert not rel.protected
    check_exact({k: v.drop(columns=["repeat_contact_share"], errors="ignore").astype(
        {c: "int64" for c in v.columns if str(v[c].dtype) == "Int64"})
        for k, v in rel.tables.items()})
    share = as_dict(rel.tables["by_service"], "service")["police"]["repeat_contact_share"]
    assert share == pytest.approx(33.3)  # 3 of 9 police contacts


def test_window_and_threshold_edges() -> None:
    # P1's five contacts span 364 days: inside a 365-day window, outside a 364-day one.
    m = compute_measures(events_frame(), window_days=364)
    totals = dict(zip(m["totals"]["measure"], m["totals"]["count"]))
    assert totals["repeat_people"] == 1 and totals["repeat_contacts"] == 6
    # Threshold 6: only P5 (6 contacts within 5 days) qualifies.
    m = compute_measures(events_frame(), repeat_threshold=6, window_days=5)
    assert dict(zip(m["totals"]["measure"], m["totals"]["count"]))["repeat_people"] == 1
    monthly = as_dict(m["monthly"], "month")
    assert monthly["2024-07"]["repeat_people"] == 1 and monthly["2025-01"]["repeat_people"] == 0
    # Threshold 1: everyone with a dated contact is a repeat-contact person.
    m = compute_measures(events_frame(), repeat_threshold=1, window_days=1)
    assert dict(zip(m["totals"]["measure"], m["totals"]["count"]))["repeat_people"] == 6


def test_same_day_contacts_share_one_window() -> None:
    # Five contacts on one day are five contacts within any window that holds that day.
    df = pd.DataFrame({"agency": "ed", "record_id": list("abcde"), "service": "ed",
                       "contact_date": pd.to_datetime(["2024-02-02"] * 5).date, "person_key": 7})
    m = compute_measures(df, window_days=1)
    assert dict(zip(m["totals"]["measure"], m["totals"]["count"]))["repeat_people"] == 1


def test_undated_contacts_count_but_never_repeat() -> None:
    df = events_frame()
    extra = pd.DataFrame({"agency": ["ed"] * 4, "record_id": ["u1", "u2", "u3", "u4"],
                          "service": ["ed"] * 4, "contact_date": [None] * 4,
                          "person_key": [P[2]] * 4})
    m = compute_measures(pd.concat([df, extra], ignore_index=True))
    totals = dict(zip(m["totals"]["measure"], m["totals"]["count"]))
    assert totals["contacts"] == 26 and totals["repeat_people"] == 2
    unknown = as_dict(m["monthly"], "month")["unknown"]
    assert (unknown["contacts"], unknown["people"], unknown["repeat_people"]) == (4, 1, 0)
    assert m["monthly"]["contacts"].sum() == 26


def _cli(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_cli_formats_and_report(tiny_db: Path, tmp_path: Path) -> None:
    res = _cli(["counts", str(tiny_db)])
    assert res.exit_code == 0, res.output
    assert "PROTECTED" in res.output and "== combinations ==" in res.output
    out = tmp_path / "rel.json"
    res = _cli(["counts", str(tiny_db), "--format", "json", "-o", str(out),
                "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["protected"] is True and doc["disclosure_control"]["suppress_below"] == 8
    assert set(doc["tables"]) == set(MEASURE_NAMES)
    # 22 contacts rounded to 20; six people is below 8 -> suppressed (null).
    totals = {r["measure"]: r["count"] for r in doc["tables"]["totals"]}
    assert totals["contacts"] == 20 and totals["people"] is None
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "http" not in html.replace(
        "http-equiv", "")
    for png in ("service_overlap.png", "contacts_per_person.png", "monthly_trend.png",
                "monthly_by_service.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"
    res = _cli(["counts", str(tiny_db), "--format", "json", "-o", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = _cli(["counts", str(tiny_db), "--format", "csv", "--suppress-below", "10",
                "--round-to", "10"])
    assert res.exit_code == 0
    long = pd.read_csv(__import__("io").StringIO(res.output), comment="#", dtype=str)
    assert list(long.columns) == ["table", "dimension", "category", "measure", "value"]
    assert "counts from 1 to 9 are suppressed" in res.output


def test_cli_unsafe_flag_is_loud(tiny_db: Path) -> None:
    res = CliRunner().invoke(main, ["counts", str(tiny_db), "--format", "json",
                                    "--unsafe-no-disclosure-control"])
    assert res.exit_code == 0
    assert "WARNING" in res.stderr and "EXACT counts" in res.stderr
    doc = json.loads(res.stdout)
    assert doc["protected"] is False and doc["status"].startswith("UNPROTECTED")
    assert {r["measure"]: r["count"] for r in doc["tables"]["totals"]} == EXPECTED_TOTALS


def test_cli_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    res = _cli(["counts", str(missing)])
    assert res.exit_code == 2 and str(missing) in res.output and "not found" in res.output
    text = tmp_path / "notes.duckdb"
    text.write_text("P. Smith, 01/02/1980\n")
    res = _cli(["counts", str(text)])
    assert res.exit_code == 2 and str(text) in res.output and "Smith" not in res.output
    partial = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(partial))
    con.execute("CREATE TABLE events(agency VARCHAR, record_id VARCHAR, service VARCHAR, "
                "contact_date DATE)")
    con.close()
    res = _cli(["counts", str(partial)])
    assert res.exit_code == 2 and "event_person" in res.output and str(partial) in res.output


def test_unmatched_events_are_an_error(tmp_path: Path) -> None:
    db = write_linkage(tmp_path / "l.duckdb", events_frame())
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM event_person WHERE record_id = 'RX7Q-0003-ZZ'")
    con.close()
    res = _cli(["counts", str(db)])
    assert res.exit_code == 2 and "one-to-one" in res.output and "RX7Q" not in res.output


@pytest.mark.parametrize("unsafe", [False, True])
def test_no_identity_bearing_value_in_any_output(tiny_db: Path, tmp_path: Path,
                                                 unsafe: bool) -> None:
    policy = DisclosurePolicy.unsafe() if unsafe else DisclosurePolicy()
    rel = release(tiny_db, policy=policy)
    report = write_report(rel, tmp_path / "rep").read_text()
    outputs = [rel.to_csv(), rel.to_json(), rel.to_text(), report]
    assert ("UNPROTECTED" in report) == unsafe and ("UNPROTECTED" in outputs[2]) == unsafe
    for text in outputs:
        for key in P.values():
            assert str(key) not in text
        for rid in RECORD_IDS:
            assert rid not in text
        assert "person_key" not in text and "record_id" not in text


def test_cli_dp_options(tiny_db: Path) -> None:
    args = ["counts", str(tiny_db), "--format", "json", "--dp-epsilon", "1", "--dp-seed", "3"]
    first, second = _cli(args), _cli(args)
    assert first.exit_code == 0 and second.exit_code == 0
    doc, doc2 = json.loads(first.output), json.loads(second.output)
    assert doc["tables"] == doc2["tables"]  # seeded: the same noise (and a second release id)
    assert (doc["disclosure_control"]["release_id"], doc2["disclosure_control"]["release_id"]) \
        == (1, 2)
    assert doc["disclosure_control"]["dp_epsilon"] == 1.0 and doc["disclosure_control"]["dp_seeded"]
    assert "testing only" in " ".join(doc["statement"])
    res = _cli(["counts", str(tiny_db), "--dp-seed", "3"])
    assert res.exit_code == 2 and "epsilon" in res.output


def test_scope_agencies_and_period(tiny_db: Path) -> None:
    from simlink.counts import Scope

    police = measures_from_db(tiny_db, scope=Scope(agencies=("police",)))
    assert dict(zip(police["totals"]["measure"], police["totals"]["count"]))["contacts"] == 9
    assert as_dict(police["by_service"], "service")["ed"]["contacts"] == 0
    # Jul-Dec 2024: P5's six July contacts and P6's one on 31 December; windows see only these.
    import datetime as dt

    half = measures_from_db(tiny_db, scope=Scope(start=dt.date(2024, 7, 1),
                                                 end=dt.date(2024, 12, 31)))
    totals = dict(zip(half["totals"]["measure"], half["totals"]["count"]))
    assert (totals["contacts"], totals["people"], totals["repeat_people"]) == (7, 2, 1)
    assert list(half["monthly"]["month"]) == [f"2024-{m:02d}" for m in range(7, 13)]
    assert half["monthly_by_service"]["ambulance"].sum() == 3
    res = _cli(["counts", str(tiny_db), "--format", "json", "--unsafe-no-disclosure-control",
                "--agencies", "police,ed", "--period-start", "2024-07-01"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert {r["measure"]: r["count"] for r in doc["tables"]["totals"]}["contacts"] == 5
    assert doc["disclosure_control"]["scope"]["agencies"] == ["ed", "police"]
    res = _cli(["counts", str(tiny_db), "--period-start", "2025-01-01", "--period-end",
                "2024-01-01"])
    assert res.exit_code == 2 and "period" in res.output
