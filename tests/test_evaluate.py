"""simlink.evaluate: hand-made cluster cases with known answers, count errors, files and CLI."""

from __future__ import annotations

import json
from math import comb

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.errors import InputError
from simlink.evaluate import count_errors, evaluate_clusters, read_predicted, summarise_count_errors

IDS = ["a1", "a2", "a3", "b1", "b2", "c1"]
TRUE_PERSON = [1, 1, 1, 2, 2, 3]


def _truth() -> pd.DataFrame:
    return pd.DataFrame({"agency": ["police", "police", "ed", "ed", "ambulance", "ed"],
                         "record_id": IDS, "person_id": TRUE_PERSON})


def _predicted(keys: list[int]) -> pd.DataFrame:
    truth = _truth()
    return pd.DataFrame({"agency": truth["agency"], "record_id": IDS, "person_key": keys})


def test_perfect_prediction_scores_one_whatever_the_labels():
    q = evaluate_clusters(_predicted([7, 7, 7, 9, 9, 4]), _truth())
    assert (q.pair_precision, q.pair_recall, q.pair_f1) == (1.0, 1.0, 1.0)
    assert (q.bcubed_precision, q.bcubed_recall, q.bcubed_f1) == (1.0, 1.0, 1.0)
    assert q.predicted_persons == q.true_persons == 3 and q.true_pairs == q.correct_pairs == 4


def test_all_merged():
    q = evaluate_clusters(_predicted([1] * 6), _truth())
    assert q.predicted_pairs == comb(6, 2) and q.correct_pairs == 4
    assert q.pair_precision == pytest.approx(4 / 15) and q.pair_recall == 1.0
    # B-cubed precision: each record's cluster is all 6; 3 records see 3 right, 2 see 2, 1 sees 1.
    assert q.bcubed_precision == pytest.approx((3 * 3 / 6 + 2 * 2 / 6 + 1 / 6) / 6)
    assert q.bcubed_recall == 1.0 and q.predicted_persons == 1


def test_all_split():
    q = evaluate_clusters(_predicted(list(range(6))), _truth())
    assert q.predicted_pairs == 0 and q.pair_precision == 1.0 and q.pair_recall == 0.0 and q.pair_f1 == 0.0
    assert q.bcubed_precision == 1.0 and q.bcubed_recall == pytest.approx(3 / 6)


def test_small_case_computed_by_hand():
    # Predicted {a1,a2} {a3,b1,b2} {c1}; true {a1,a2,a3} {b1,b2} {c1}.
    # Pairs: predicted a1a2, a3b1, a3b2, b1b2 (4); true a1a2, a1a3, a2a3, b1b2 (4); common a1a2, b1b2 (2).
    q = evaluate_clusters(_predicted([1, 1, 2, 2, 2, 3]), _truth())
    assert (q.predicted_pairs, q.true_pairs, q.correct_pairs) == (4, 4, 2)
    assert q.pair_precision == 0.5 and q.pair_recall == 0.5 and q.pair_f1 == 0.5
    # B-cubed per record (precision, recall): a1,a2 (1, 2/3); a3 (1/3, 1/3); b1,b2 (2/3, 1); c1 (1, 1).
    assert q.bcubed_precision == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3 + 1) / 6)
    assert q.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1 + 1) / 6)


def test_pair_counts_match_brute_force_on_random_clusters():
    rng = np.random.default_rng(0)
    n = 300
    truth = pd.DataFrame({"agency": "ed", "record_id": [f"r{i}" for i in range(n)],
                          "person_id": rng.integers(0, 60, n)})
    pred = truth.rename(columns={"person_id": "person_key"}).copy()
    pred["person_key"] = np.where(rng.random(n) < 0.2, rng.integers(0, 60, n), pred["person_key"])
    q = evaluate_clusters(pred, truth)
    i, j = np.triu_indices(n, 1)
    same_pred = pred["person_key"].to_numpy()[i] == pred["person_key"].to_numpy()[j]
    same_true = truth["person_id"].to_numpy()[i] == truth["person_id"].to_numpy()[j]
    assert q.correct_pairs == int((same_pred & same_true).sum())
    assert q.pair_precision == pytest.approx((same_pred & same_true).sum() / same_pred.sum())
    assert q.pair_recall == pytest.approx((same_pred & same_true).sum() / same_true.sum())


def test_events_missing_on_either_side_are_an_error_with_counts_only():
    pred = _predicted([1, 1, 2, 2, 2, 3]).iloc[2:]
    with pytest.raises(InputError) as info:
        evaluate_clusters(pred, _truth(), predicted_name="linkage.duckdb", truth_name="truth.csv")
    message = str(info.value)
    assert "2 events of truth.csv are missing from linkage.duckdb" in message
    assert not any(record in message for record in IDS)
    extra = pd.concat([_predicted([1] * 6), pd.DataFrame({"agency": ["ed"], "record_id": ["zz"], "person_key": [1]})])
    with pytest.raises(InputError, match="1 events of prediction are missing from truth"):
        evaluate_clusters(extra, _truth())
    with pytest.raises(InputError, match="more than once"):
        evaluate_clusters(pd.concat([_predicted([1] * 6)] * 2), _truth())


def test_count_errors_aligns_cells_and_reports_errors():
    true = {"people_by_service": pd.DataFrame({"service": ["ed", "police", "ambulance"], "people": [10, 4, 0]}),
            "contacts": pd.DataFrame({"contacts": [20]}, index=pd.Index(["all"], name="scope"))}
    predicted = {"people_by_service": pd.DataFrame({"service": ["police", "ed", "mental_health"], "people": [5, 8, 2]}),
                 "contacts": pd.DataFrame({"contacts": [20]}, index=pd.Index(["all"], name="scope"))}
    errors = count_errors(predicted, true)
    by_service = errors["people_by_service"].set_index("service")
    assert by_service.loc["ed", ["predicted", "true", "abs_error"]].tolist() == [8, 10, 2]
    assert by_service.loc["ed", "rel_error"] == pytest.approx(0.2)
    assert by_service.loc["police", "rel_error"] == pytest.approx(0.25)
    assert by_service.loc["mental_health", ["predicted", "true", "abs_error"]].tolist() == [2, 0, 2]
    assert np.isnan(by_service.loc["mental_health", "rel_error"])
    assert by_service.loc["ambulance", ["predicted", "true"]].tolist() == [0, 0]
    assert errors["contacts"]["abs_error"].tolist() == [0.0]
    summary = summarise_count_errors(errors).set_index("measure")
    assert summary.loc["people_by_service", "max_abs_error"] == 2 and summary.loc["people_by_service", "cells"] == 4
    with pytest.raises(InputError, match="missing from the prediction"):
        count_errors({}, true)


def test_cli_reads_linkage_database_and_prints_metrics(tmp_path):
    truth_path = tmp_path / "truth.csv"
    _truth().to_csv(truth_path, index=False)
    db = tmp_path / "linkage.duckdb"
    con = duckdb.connect(str(db))
    pred = _predicted([1, 1, 2, 2, 2, 3])
    con.execute("CREATE TABLE event_person AS SELECT agency, record_id, person_key::BIGINT AS person_key FROM pred")
    con.close()
    assert len(read_predicted(db)) == 6
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(db), "--truth", str(truth_path), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["pair_f1"] == 0.5 and metrics["records"] == 6
    csv_path = tmp_path / "pred.csv"
    pred.iloc[:4].to_csv(csv_path, index=False)
    bad = runner.invoke(main, ["evaluate", str(csv_path), "--truth", str(truth_path)])
    assert bad.exit_code == 2 and "2 events" in bad.output and str(csv_path) in bad.output
    table = runner.invoke(main, ["evaluate", str(db), "--truth", str(truth_path)])
    assert table.exit_code == 0 and "bcubed_f1" in table.output


def test_evaluate_synth_truth_against_itself(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s"
    assert runner.invoke(main, ["synth", "--people", "800", "--seed", "2", "--out", str(out)]).exit_code == 0
    truth = pd.read_csv(out / "truth.csv")
    truth.rename(columns={"person_id": "person_key"}).to_parquet(tmp_path / "perfect.parquet")
    result = runner.invoke(main, ["evaluate", str(tmp_path / "perfect.parquet"), "--truth", str(out / "truth.csv"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["pair_f1"] == 1.0 and metrics["true_persons"] == 800
