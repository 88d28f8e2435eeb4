"""simlink link on Splink's Spark backend (local mode) agrees with the DuckDB path.

Skipped when pyspark or a Java runtime is missing (pip install 'simlink[spark]'; Java 17).
One Spark session serves the whole module: its start (~10-20 s) dominates the runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

if os.environ.get("SIMLINK_REQUIRE_SPARK") == "1":  # CI (.ci/run): a skip would hide a broken setup
    import pyspark  # noqa: F401

    assert shutil.which("java") is not None, "the spark tests need a Java runtime on PATH"
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("the spark backend needs a Java runtime on PATH", allow_module_level=True)

from simlink.cli import main  # noqa: E402
from simlink.agency.encode import encode_file  # noqa: E402
from simlink.evaluate import evaluate_clusters, evaluate_files, read_predicted  # noqa: E402
from simlink.agency.keys import generate_key_file, read_key_file  # noqa: E402
from simlink.link import link_files  # noqa: E402
from simlink.link.spark import port_model, spark_memory  # noqa: E402
from simlink.schema import load_schema  # noqa: E402
from simlink.synth import AGENCIES, SynthConfig, write_synth  # noqa: E402

PEOPLE = 300
RELEASE_TABLES = {"events", "event_person", "run_metadata", "model", "link_stats"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("spark")
    write_synth(SynthConfig(people=PEOPLE, seed=5, errors="medium"), folder)
    secret, schema = read_key_file(generate_key_file(folder / "key.hex")), load_schema(None)
    encoded = []
    for agency in AGENCIES:
        encode_file(folder / f"{agency}.csv", folder / f"{agency}.parquet", secret=secret, agency=agency, schema=schema)
        encoded.append(folder / f"{agency}.parquet")
    duck = link_files(encoded, folder / "duck.duckdb", charts=False)
    return {"folder": folder, "encoded": encoded, "truth": pd.read_csv(folder / "truth.csv"), "duck": duck}


@pytest.fixture(scope="module")
def spark_linked(data) -> Path:
    output = data["folder"] / "spark.duckdb"
    result = CliRunner().invoke(main, ["link", *map(str, data["encoded"]), "-o", str(output),
                                       "--backend", "spark", "--threads", "2", "--memory-limit", "2GB"])
    assert result.exit_code == 0, result.output
    assert "persons" in result.output
    return output


def _partition(event_person: pd.DataFrame) -> set[frozenset]:
    refs = event_person.assign(ref=event_person["agency"] + "/" + event_person["record_id"].astype(str))
    return {frozenset(v) for _, v in refs.groupby("person_key")["ref"]}


def _tables(path: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                           "ORDER BY table_name, ordinal_position").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        out.setdefault(table, []).append((column, kind))
    return out


def _query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_spark_output_has_the_duckdb_contract(spark_linked, data):
    spark_tables = _tables(spark_linked)
    assert set(spark_tables) == RELEASE_TABLES
    assert spark_tables == _tables(data["folder"] / "duck.duckdb")
    event_person = read_predicted(spark_linked)
    truth = data["truth"]
    assert len(event_person) == len(truth)
    assert not event_person.duplicated(["agency", "record_id"]).any()
    assert set(zip(event_person.agency, event_person.record_id)) == set(zip(truth.agency, truth.record_id.astype(str)))
    metadata = {k: json.loads(v) for k, v in _query(spark_linked, "SELECT key, value FROM run_metadata")}
    assert metadata["backend"] == "spark" and metadata["model_reused"] is False
    model = json.loads(_query(spark_linked, "SELECT json FROM model")[0][0])
    assert model["sql_dialect"] == "spark" and len(model["comparisons"]) >= 5


def test_spark_agrees_with_duckdb(spark_linked, data):
    duck_file = data["folder"] / "duck.duckdb"
    spark_quality = evaluate_files(spark_linked, data["folder"] / "truth.csv")
    duck_quality = evaluate_files(duck_file, data["folder"] / "truth.csv")
    assert spark_quality.pair_f1 >= 0.95, spark_quality
    assert abs(spark_quality.pair_f1 - duck_quality.pair_f1) <= 0.01, (spark_quality.pair_f1, duck_quality.pair_f1)
    stats = {b: dict(_query(p, "SELECT statistic, value FROM link_stats")) for b, p in
             (("spark", spark_linked), ("duckdb", duck_file))}
    # the same keyed blocking rules select exactly the same candidate pairs on both engines
    assert stats["spark"]["blocked_pairs"] == stats["duckdb"]["blocked_pairs"] > 0
    above = stats["spark"]["pairs_at_or_above_threshold"], stats["duckdb"]["pairs_at_or_above_threshold"]
    # u comes from differently drawn samples, so scores near the threshold move a little:
    # measured 0.5% apart before the unordered-names and postcode blocking keys, 2.2% after.
    assert abs(above[0] - above[1]) <= 0.05 * max(above), above


def test_trained_models_are_close(spark_linked, data):
    spark_model = json.loads(_query(spark_linked, "SELECT json FROM model")[0][0])
    duck_model = json.loads(_query(data["folder"] / "duck.duckdb", "SELECT json FROM model")[0][0])
    # the prior comes from the same deterministic rules on the same pairs: identical
    assert spark_model["probability_two_random_records_match"] == pytest.approx(
        duck_model["probability_two_random_records_match"], rel=1e-9)
    for cs, cd in zip(spark_model["comparisons"], duck_model["comparisons"]):
        assert cs["output_column_name"] == cd["output_column_name"]
        for ls, ld in zip(cs["comparison_levels"], cd["comparison_levels"]):
            assert ls["label_for_charts"] == ld["label_for_charts"]
            if ls.get("is_null_level"):
                continue
            # m from EM on the same blocked pairs: a level EM never saw has no m on either engine
            assert ("m_probability" in ls) == ("m_probability" in ld)
            if "m_probability" in ls:
                assert ls["m_probability"] == pytest.approx(ld["m_probability"], abs=0.02)
            # u from differently drawn samples (each engine hashes ids its own way, and Spark's
            # draw is not repeatable): at 300 people a u near 0.5 was seen up to 0.040 apart
            # (0.003 at 10k and 100k contacts, benchmarks/spark_link.py). The bound catches a
            # level that is wrong on one engine (u of 0 or 1, levels out of order), not noise.
            if "u_probability" in ls and "u_probability" in ld:
                assert ls["u_probability"] == pytest.approx(ld["u_probability"], abs=0.1)


def test_duckdb_model_reused_on_spark_gives_duckdb_clusters(spark_linked, data):
    output = data["folder"] / "reuse.duckdb"
    result = link_files(data["encoded"], output, backend="spark", model=data["duck"].model_file, charts=False,
                        threads=2, memory_limit="2GB")
    assert result.trained is False
    duck = read_predicted(data["folder"] / "duck.duckdb").rename(columns={"person_key": "person_id"})
    agreement = evaluate_clusters(read_predicted(output), duck)
    # same model, same pairs, same SQL levels, and the clustering is the same DuckDB SQL for
    # both backends: the same persons (float rounding of a weight at the cut could move one
    # pair; none did at 300 people)
    assert _partition(read_predicted(output)) == _partition(read_predicted(data["folder"] / "duck.duckdb"))
    assert agreement.pair_f1 == 1.0, agreement


def test_model_sql_ports_between_dialects(spark_linked, data):
    duck_model = json.loads(Path(data["duck"].model_file).read_text())  # Splink's own settings JSON
    spark_model = json.loads(_query(spark_linked, "SELECT json FROM model")[0][0])
    ported = port_model(duck_model, "spark")
    assert ported["sql_dialect"] == "spark" and duck_model["sql_dialect"] == "duckdb"
    # the DuckDB model's SQL, re-quoted, is exactly what Splink generates for Spark
    assert [[lv["sql_condition"] for lv in c["comparison_levels"]] for c in ported["comparisons"]] == \
        [[lv["sql_condition"] for lv in c["comparison_levels"]] for c in spark_model["comparisons"]]
    assert ported["blocking_rules_to_generate_predictions"] == spark_model["blocking_rules_to_generate_predictions"]
    levels = [(a, b) for ca, cb in zip(duck_model["comparisons"], ported["comparisons"])
              for a, b in zip(ca["comparison_levels"], cb["comparison_levels"])]
    assert all((a.get("m_probability"), a.get("u_probability")) == (b.get("m_probability"), b.get("u_probability"))
               for a, b in levels)
    assert port_model(ported, "duckdb") == duck_model


def test_missing_pyspark_is_a_clear_error(data, tmp_path, monkeypatch):
    for name in ("pyspark", "pyspark.sql"):
        monkeypatch.setitem(sys.modules, name, None)  # import now fails as if not installed
    result = CliRunner().invoke(main, ["link", str(data["encoded"][0]), "-o", str(tmp_path / "s.duckdb"),
                                       "--backend", "spark"])
    assert result.exit_code == 2, result.output
    assert "pip install 'simlink[spark]'" in result.output
    assert not (tmp_path / "s.duckdb").exists()


def test_memory_limit_in_jvm_notation():
    assert spark_memory("6GB") == "6g" and spark_memory("512MB") == "512m"
    with pytest.raises(Exception, match="memory limit"):
        spark_memory("lots")
