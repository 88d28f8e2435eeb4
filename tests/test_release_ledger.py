"""Protection across releases: the release ledger, the cross-release check and the DP budget."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.counts import (
    DisclosurePolicy, EarlierRelease, LedgerError, RepeatRule, Scope, discrete_laplace, release,
)
from simlink.counts.disclosure import laplace_error, midpoint6
from simlink.counts.ledger import CELLS, DEFAULT_TOTAL_EPSILON, RELEASES
from simlink.counts.measures import measures_many
from simlink.counts.release import cells_of, protect_cells, protect_measures, relations

AGENCIES = ("ambulance", "ed", "mental_health", "police")


def random_linkage(path: Path, n_people: int = 260, seed: int = 3) -> Path:
    """A small linkage database: a few hundred people over two years, four agencies, many
    people near the repeat thresholds (so releases with other rules differ by a few)."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(1, n_people + 1):
        n = int(min(rng.geometric(0.22), 14))
        home = rng.choice(AGENCIES, p=[0.2, 0.35, 0.15, 0.3])
        start = int(rng.integers(0, 600))
        gap = float(rng.choice([4, 20, 60]))
        for i in range(n):
            agency = home if rng.random() < 0.7 else rng.choice(AGENCIES)
            day = dt.date(2023, 1, 1) + dt.timedelta(days=int(start + i * rng.exponential(gap)) % 730)
            rows.append((agency, f"R{len(rows):06d}", agency, day, person))
    frame = pd.DataFrame(rows, columns=["agency", "record_id", "service", "contact_date",
                                        "person_key"])
    con = duckdb.connect(str(path))
    con.register("f", frame)
    con.execute("CREATE TABLE events AS SELECT agency, record_id, service, "
                "contact_date::DATE AS contact_date FROM f")
    con.execute("CREATE TABLE event_person AS SELECT agency, record_id, "
                "person_key::BIGINT AS person_key FROM f")
    con.close()
    return path


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    return random_linkage(tmp_path_factory.mktemp("ledger") / "linkage.duckdb")


# The release settings the pairs are drawn from: repeat thresholds, repeat windows, data
# periods and agency subsets. Measures and each setting's first release are computed once
# (the fast path: one open database, decisions on cells without tables).
THRESHOLDS = (4, 5, 6)
WINDOWS = (180, 365)
PERIODS = ((None, None), (dt.date(2023, 1, 1), dt.date(2023, 12, 31)))
SUBSETS = (None, ("ed", "mental_health", "police"), ("ambulance", "ed", "police"))


def test_no_cell_published_in_two_releases_differs_by_1_to_7(small_db: Path) -> None:
    settings = [(t, w, p, a) for t in THRESHOLDS for w in WINDOWS for p in PERIODS for a in SUBSETS]
    raws = measures_many(small_db, [(RepeatRule(t, w), Scope(agencies=a, start=p[0], end=p[1]))
                                    for t, w, p, a in settings])
    policy = DisclosurePolicy()
    prepared = {}
    for setting, raw in zip(settings, raws):
        exact, rels = cells_of(raw), relations(raw)
        alone, _ = protect_cells(exact, rels, policy)  # as a first release, or unchecked
        prepared[setting] = (exact, rels, alone.values)
    rng = np.random.default_rng(12)
    leaks_unchecked = overlap_suppressed = 0
    for _ in range(1000):
        a, b = (settings[i] for i in rng.choice(len(settings), size=2, replace=False))
        exact_a, _, first = prepared[a]
        exact_b, rels_b, unchecked = prepared[b]
        earlier = [EarlierRelease(1, "t0", {}, {c: exact_a[c] for c, v in first.items()
                                                 if v is not None})]
        second, clashes = protect_cells(exact_b, rels_b, policy, earlier=earlier)
        overlap_suppressed += len(clashes)
        for c, v in second.values.items():
            if v is not None and first.get(c) is not None:
                assert not 1 <= abs(exact_b[c] - exact_a[c]) <= 7, (a, b, c)
        leaks_unchecked += sum(1 for c, v in unchecked.items()
                               if v is not None and first.get(c) is not None
                               and 1 <= abs(exact_b[c] - exact_a[c]) <= 7)
    # The check is what makes the difference: without it the same pairs do leak.
    assert leaks_unchecked > 100 and overlap_suppressed > 100


def _ledger(db: Path) -> tuple[list[tuple], int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        heads = con.execute(f"SELECT release_id, parameters, dp_epsilon, "
                            f"cells_suppressed_for_overlap FROM {RELEASES} ORDER BY 1").fetchall()
        n_cells = con.execute(f"SELECT count(*) FROM {CELLS}").fetchone()[0]
    finally:
        con.close()
    return heads, n_cells


def test_ledger_records_releases_and_suppresses_differences(tmp_path: Path) -> None:
    db = random_linkage(tmp_path / "l.duckdb")
    first = release(db, repeat_threshold=5)
    second = release(db, repeat_threshold=6)
    heads, n_cells = _ledger(db)
    assert [h[0] for h in heads] == [1, 2]
    assert json.loads(heads[1][1])["repeat_rule"]["threshold"] == 6
    assert n_cells == len(first.exact_cells) + len(second.exact_cells)
    assert second.meta["cells_suppressed_for_overlap"] == heads[1][3] > 0
    assert "releases 1" in " ".join(second.statement)
    for c, v in second.published_cells.items():
        if v is not None and first.published_cells.get(c) is not None:
            assert not 1 <= abs(second.exact_cells[c] - first.exact_cells[c]) <= 7
    # The same release again differs by nothing: nothing more is withheld.
    again = release(db, repeat_threshold=5)
    assert again.meta["cells_suppressed_for_overlap"] == 0
    assert again.published_cells == first.published_cells
    # Refusing instead names the earlier release; the refused release is not recorded.
    with pytest.raises(LedgerError, match="release 1 of"):
        release(db, repeat_threshold=6, on_overlap="refuse")
    assert len(_ledger(db)[0]) == 3
    # Turning the check off is explicit, and said.
    off = release(db, repeat_threshold=6, check_overlap=False)
    assert off.meta["cells_suppressed_for_overlap"] == 0
    assert "cross-release check OFF" in off.to_text()
    # Unprotected output is not a release: nothing recorded.
    release(db, policy=DisclosurePolicy.unsafe())
    assert len(_ledger(db)[0]) == 4


def test_cli_refuse_and_no_check(tmp_path: Path) -> None:
    db = random_linkage(tmp_path / "l.duckdb")
    run = lambda *a: CliRunner().invoke(main, ["counts", str(db), *a])  # noqa: E731
    assert run("--repeat-threshold", "5").exit_code == 0
    res = run("--repeat-threshold", "6", "--on-overlap", "refuse")
    assert res.exit_code == 2 and "release 1" in res.output and str(db) in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    res = run("--repeat-threshold", "6", "--no-release-check", "--format", "json")
    assert res.exit_code == 0 and "--no-release-check" in res.stderr
    assert any("check OFF" in s for s in json.loads(res.stdout)["statement"])
    res = run("--agencies", "ed,fire_service")
    assert res.exit_code == 2 and "fire_service" in res.output


def test_dp_releases_are_refused_past_the_budget(tmp_path: Path) -> None:
    db = random_linkage(tmp_path / "l.duckdb")
    run = lambda *a: CliRunner().invoke(main, ["counts", str(db), "--format", "json", *a])  # noqa: E731
    assert DEFAULT_TOTAL_EPSILON == 2.0
    spent = []
    for _ in range(2):
        res = run("--dp-epsilon", "1", "--dp-seed", "5")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)["disclosure_control"]
        spent.append((doc["dp_budget_total"], doc["dp_budget_spent"], doc["dp_budget_remaining"]))
    assert spent == [(2.0, 1.0, 1.0), (2.0, 2.0, 0.0)]
    res = run("--dp-epsilon", "0.5", "--dp-seed", "5")
    assert res.exit_code == 2 and "budget" in res.output and str(db) in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert [h[2] for h in _ledger(db)[0]] == [1.0, 1.0]  # the refused release spent nothing
    # Non-DP releases spend nothing and are still allowed.
    assert run().exit_code == 0
    # Raising the total is explicit and said.
    res = run("--dp-epsilon", "0.5", "--dp-seed", "5", "--dp-budget", "3")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["disclosure_control"]["dp_budget_spent"] == 2.5
    assert any("set by this command" in s for s in doc["statement"])
    assert run("--dp-epsilon", "1", "--dp-seed", "5").exit_code == 2


def test_dp_release_states_expected_error(tmp_path: Path) -> None:
    db = random_linkage(tmp_path / "l.duckdb")
    rel = release(db, policy=DisclosurePolicy(dp_epsilon=1.0, dp_seed=1))
    scale = rel.meta["dp_noise_scale"]
    err = laplace_error(scale)
    assert rel.meta["dp_expected_abs_error_per_cell"] == pytest.approx(err["mean_abs"], abs=0.01)
    assert "expected error per cell" in " ".join(rel.statement)
    noise = discrete_laplace(np.zeros(100_000, dtype=np.int64), 6.0, seed=4)
    err = laplace_error(6.0)
    assert np.abs(noise).mean() == pytest.approx(err["mean_abs"], rel=0.02)
    assert noise.std() == pytest.approx(err["sd"], rel=0.02)
    inside = (np.abs(noise) <= err["within_95"]).mean()
    assert inside >= 0.95 and (np.abs(noise) <= err["within_95"] - 1).mean() < 0.95


def test_midpoint6_rounding() -> None:
    x = np.arange(0, 40)
    got = midpoint6(x)
    assert got[:14].tolist() == [0, 3, 3, 3, 3, 3, 3, 9, 9, 9, 9, 9, 9, 15]
    assert all(v == 0 or (v - 3) % 6 == 0 for v in got)
    assert all(math.ceil(v / 6) * 6 - 3 * (v != 0) == g for v, g in zip(x, got))
    # Each block of six goes to its midpoint, rounded down: bias -0.5 per block, zero kept.
    assert got[1:37].mean() == pytest.approx(x[1:37].mean() - 0.5)


def test_midpoint6_release(tmp_path: Path) -> None:
    db = random_linkage(tmp_path / "l.duckdb")
    rel = release(db, policy=DisclosurePolicy(rounding="midpoint6"))
    values = [v for v in rel.published_cells.values() if v is not None]
    assert values and all(v == 0 or (v >= 9 and (v - 3) % 6 == 0) for v in values)
    assert "midpoint-6" in " ".join(rel.statement)
    assert json.loads(rel.to_json())["disclosure_control"]["rounding"] == "midpoint6"


def test_cells_withheld_for_overlap_cannot_be_worked_out_from_the_release(small_db: Path) -> None:
    from test_disclosure import attack, recovered

    policy = DisclosurePolicy()
    settings = [(RepeatRule(5, 365), Scope()), (RepeatRule(6, 365), Scope()),
                (RepeatRule(4, 180), Scope(agencies=("ed", "mental_health", "police"))),
                (RepeatRule(5, 180), Scope(start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31)))]
    raws = measures_many(small_db, settings)
    checked = 0
    for i, j in [(0, 1), (1, 0), (0, 2), (2, 3), (3, 0), (1, 3)]:
        first = protect_measures(raws[i], policy, settings[i][0])
        earlier = [EarlierRelease(1, "t0", {}, {c: first.exact_cells[c]
                                                for c, v in first.published_cells.items()
                                                if v is not None})]
        second = protect_measures(raws[j], policy, settings[j][0], earlier=earlier)
        checked += second.meta["cells_suppressed_for_overlap"]
        assert recovered(attack(second, policy), policy.suppress_below) == []
    assert checked > 0
