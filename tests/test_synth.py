"""simlink synth: determinism, error rates, heavy tail, truth consistency, encodability."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.agency.encode import encode_file
from simlink.agency.normalise import date as normalise_date, nhs_check_digit_ok, person_name, uk_postcode
from simlink.schema import load_schema
from simlink.synth import (AGENCIES, ERROR_BIT, ERROR_NAMES, STYLES, ErrorRates, SynthConfig, iter_blocks, preset,
                           truth_events, write_synth)
from simlink.synth.errors import to_ascii
from simlink.synth.writer import CONTRACT_COLUMNS

FILES = [f"{a}.csv" for a in AGENCIES] + ["truth.csv"]


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "medium"
    write_synth(SynthConfig(people=8000, seed=11), out)
    return out


def test_cli_is_deterministic_for_a_seed(tmp_path):
    runner = CliRunner()
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        result = runner.invoke(main, ["synth", "--people", "1500", "--seed", seed, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["police.csv"] != _digest(tmp_path / "c")["police.csv"]
    again = runner.invoke(main, ["synth", "--people", "10", "--out", str(tmp_path / "a")])
    assert again.exit_code == 2 and "already exists" in again.output


def test_agency_files_hold_only_contract_columns_and_truth_matches(medium):
    truth = pd.read_csv(medium / "truth.csv", dtype={"record_id": str})
    assert list(truth.columns) == ["agency", "record_id", "person_id"]
    assert not truth.duplicated(["agency", "record_id"]).any()
    seen = []
    for agency in AGENCIES:
        frame = pd.read_csv(medium / f"{agency}.csv", dtype=str, keep_default_na=False)
        assert tuple(frame.columns) == CONTRACT_COLUMNS
        assert frame["record_id"].is_unique and (frame["record_id"] != "").all()
        seen.append(pd.DataFrame({"agency": agency, "record_id": frame["record_id"]}))
    records = pd.concat(seen, ignore_index=True)
    both = records.merge(truth, on=["agency", "record_id"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) == len(truth) == len(records)
    events = truth_events(medium)
    assert len(events) == len(truth)
    assert events["person_key"].nunique() == truth["person_id"].nunique() == 8000
    assert events["contact_date"].min() >= pd.Timestamp("2024-01-01")
    assert events["contact_date"].max() <= pd.Timestamp("2025-12-31")
    assert (events["service"] == events["agency"]).all()


def test_heavy_tail_of_contacts_and_bursts(medium):
    events = truth_events(medium)
    per_person = events.groupby("person_key").size()
    assert (per_person == 1).mean() > 0.5            # most people once
    assert 0.04 < (per_person >= 5).mean() < 0.25    # a real high-intensity tail
    assert per_person.max() >= 40
    assert 2.0 < len(events) / len(per_person) < 4.5  # ~3 contacts per person
    # Bursts: consecutive contacts of a person are much closer than uniform dates would be.
    gaps = events.sort_values(["person_key", "contact_date"]).groupby("person_key")["contact_date"].diff().dropna()
    assert (gaps <= pd.Timedelta(days=14)).mean() > 0.4
    # Correlated services: fewer distinct services per frequent user than independent draws.
    frequent = per_person[per_person >= 5].index
    distinct = events[events["person_key"].isin(frequent)].groupby("person_key")["service"].nunique()
    share = events["service"].value_counts(normalize=True).reindex(AGENCIES).to_numpy()
    expected = (1 - (1 - share[None, :]) ** per_person[frequent].to_numpy()[:, None]).sum(axis=1).mean()
    assert distinct.mean() < expected - 0.4


def _uniform_rates(rate: float) -> dict[str, ErrorRates]:
    return {a: ErrorRates(**{name: rate for name in ERROR_NAMES}) for a in AGENCIES}


def test_observed_error_rates_match_configured():
    config = SynthConfig(people=12000, seed=3, errors=_uniform_rates(0.12), block_size=6000)
    applicable = {name: 0 for name in ERROR_NAMES}
    applied = dict(applicable)
    for block in iter_blocks(config):
        for ab in block.agencies.values():
            for name, bit in ERROR_BIT.items():
                applicable[name] += int(((ab.records.applicable & bit) > 0).sum())
                applied[name] += int(((ab.records.applied & bit) > 0).sum())
    for name in ERROR_NAMES:
        n = applicable[name]
        assert n >= 300, name  # every error kind can happen often enough to be measured
        tolerance = 4 * np.sqrt(0.12 * 0.88 / n) + 0.002
        assert abs(applied[name] / n - 0.12) < tolerance, (name, applied[name] / n)


def _norm(values: np.ndarray, normaliser) -> np.ndarray:
    return np.array(normaliser(pa.array(list(values), pa.string())).values.to_pylist(), dtype=object)


def test_output_values_reflect_the_recorded_errors():
    """Values differ from the true identity exactly where (and only where) errors were applied."""
    block = next(iter_blocks(SynthConfig(people=6000, seed=8, errors="high")))
    people = block.people
    row_of = {pid: i for i, pid in enumerate(people.person_id)}
    for agency, ab in block.agencies.items():
        idx = np.array([row_of[p] for p in ab.person_id])
        applied = ab.records.applied
        has = lambda *names: np.bitwise_or.reduce([(applied & ERROR_BIT[n]) > 0 for n in names])  # noqa: E731
        dob = _norm(ab.records.columns["date_of_birth"], normalise_date)
        missing = has("missing_dob")
        assert (dob[missing] == None).all()  # noqa: E711
        changed = dob[~missing] != people.dob[idx][~missing].astype(str)
        assert np.array_equal(changed, has("dob_day_month_swap", "dob_wrong_year")[~missing])
        given = _norm(ab.records.columns["given_name"], person_name)
        true_given = people.given[idx]
        true_given = _norm(to_ascii(true_given) if STYLES[agency].ascii_only else true_given, person_name)
        touched = has("alias", "nickname", "initial_only", "name_swap", "typo_given", "missing_given")
        assert (given[~touched] == true_given[~touched]).all(), agency
        only_typo = has("typo_given") & ~has("alias", "nickname", "initial_only", "name_swap", "missing_given")
        assert (given[only_typo] != true_given[only_typo]).mean() > 0.9
        nhs = ab.records.columns["nhs_number"]
        assert np.array_equal(nhs == None, has("missing_nhs"))  # noqa: E711


def test_agency_profiles_rank_police_poorest_and_mental_health_best(medium):
    rates = preset("medium")
    assert rates["police"].missing_dob > rates["ambulance"].missing_dob > rates["mental_health"].missing_dob
    assert rates["police"].alias > 0 and rates["mental_health"].alias == 0
    missing_dob = {}
    for agency in AGENCIES:
        frame = pd.read_csv(medium / f"{agency}.csv", dtype=str, keep_default_na=False)
        missing_dob[agency] = (frame["date_of_birth"] == "").mean()
        n = len(frame)
        expected = rates[agency].missing_dob
        assert abs(missing_dob[agency] - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 0.003
    assert missing_dob["police"] > missing_dob["ed"] > missing_dob["mental_health"]
    assert preset("high")["ed"].typo_family > preset("medium")["ed"].typo_family > preset("low")["ed"].typo_family


def test_population_identifiers_are_valid():
    block = next(iter_blocks(SynthConfig(people=5000, seed=1)))
    nhs = block.people.nhs_number
    assert len(set(nhs)) == len(nhs) and all(nhs_check_digit_ok(x) for x in nhs)
    postcodes = uk_postcode(pa.array(list(block.people.postcode)))
    assert not postcodes.invalid.any() and postcodes.values.null_count == 0
    surnames = pd.Series(block.people.family).value_counts()
    assert surnames.index[0] in {"Smith", "Jones", "Patel", "Williams"}
    assert (surnames == 1).sum() > 300  # long tail of rare names
    ages = (np.datetime64("2024-01-01") - block.people.dob).astype(int) / 365.25
    assert ages.min() >= 15.9 and ages.max() < 100 and 25 < np.median(ages) < 50
    # no date of birth is a spike (an artefact such as clipping ages would chain people together)
    assert pd.Series(block.people.dob).value_counts().iloc[0] <= 0.002 * len(block.people.dob)


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_agency_files_encode_strictly(tmp_path, level):
    out = tmp_path / level
    write_synth(SynthConfig(people=1500, seed=21, errors=level), out)
    secret = secrets.token_bytes(32)
    schema = load_schema(None)
    for agency in AGENCIES:
        summary = encode_file(out / f"{agency}.csv", tmp_path / f"{agency}.parquet", secret=secret,
                              agency=agency, schema=schema, strict=True)
        frame = pd.read_csv(out / f"{agency}.csv", dtype=str, keep_default_na=False)
        assert summary.rows == len(frame)
        invalid = {name: counts.invalid for name, counts in summary.fields.items()}
        # Only the deliberate 'no fixed abode' pseudo-postcodes are unreadable.
        assert invalid["date_of_birth"] == invalid["sex"] == invalid["nhs_number"] == 0
        assert invalid["postcode"] == (frame["postcode"] == "ZZ99 3VZ").sum()


def test_debug_file_records_the_errors_seen_in_the_output(tmp_path):
    out = tmp_path / "dbg"
    result = CliRunner().invoke(main, ["synth", "--people", "3000", "--seed", "9", "--errors", "high",
                                       "--out", str(out), "--debug-errors"])
    assert result.exit_code == 0, result.output
    debug = pd.read_parquet(out / "debug" / "errors.parquet")
    truth = pd.read_csv(out / "truth.csv", dtype={"record_id": str})
    assert len(debug) == len(truth)
    for agency, column, error in (("police", "date_of_birth", "missing_dob"), ("ed", "nhs_number", "missing_nhs"),
                                  ("ambulance", "postcode", "missing_postcode")):
        frame = pd.read_csv(out / f"{agency}.csv", dtype=str, keep_default_na=False)
        flags = debug[debug["agency"] == agency].set_index("record_id")["applied"]
        flagged = (flags.reindex(frame["record_id"]).to_numpy() & ERROR_BIT[error]) > 0
        assert np.array_equal(flagged, (frame[column] == "").to_numpy())
        assert flagged.sum() > 10


def test_true_counts_match_the_truth_file(tmp_path) -> None:
    """true_counts.json is the counts measures on the truth: totals agree with truth.csv."""
    import json

    import pandas as pd
    from click.testing import CliRunner

    from simlink.cli import main

    result = CliRunner().invoke(main, ["synth", "--people", "200", "--seed", "3", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    truth = pd.read_csv(tmp_path / "s" / "truth.csv", dtype=str)
    document = json.loads((tmp_path / "s" / "true_counts.json").read_text())
    totals = {row["measure"]: row["count"] for row in document["measures"]["totals"]}
    assert totals["contacts"] == len(truth)
    assert totals["people"] == truth["person_id"].nunique()
    by_service = {row["service"]: row for row in document["measures"]["by_service"]}
    assert sum(by_service[a]["contacts"] for a in by_service) == len(truth)
    assert by_service["police"]["people"] == truth.loc[truth.agency == "police", "person_id"].nunique()


def test_tiny_populations_generate_without_error(tmp_path):
    """Small agencies draw some errors zero times; every error step must cope with no rows."""
    from simlink.synth.errors import _replace

    assert _replace(np.array([], dtype=object), "-", " - ").shape == (0,)
    for seed in range(6):
        write_synth(SynthConfig(people=25, seed=seed, errors="high"), tmp_path / str(seed))
        assert (tmp_path / str(seed) / "truth.csv").exists()
