"""Splink's Spark backend for ``simlink link --backend spark``.

The linkage model is the same whichever engine scores it: the comparisons are plain SQL
(``bit_count``, ``&``, ``CAST``) that Spark SQL runs as it is. What differs is plumbing:

* a Spark session: the active one if the caller made one (a cluster, ``spark-submit``),
  otherwise a local one sized like the DuckDB run (``local[threads]``, driver memory from
  the memory limit, a few shuffle partitions per core instead of Spark's 200, adaptive
  execution off);
* a checkpoint directory (Splink writes intermediate tables there to cut Spark's lineage);
  a run-private folder under the run's temporary directory unless the session has one;
* the distinct encodings go to Spark and the kept pairs come back as Arrow tables through
  the driver, so the working DuckDB database and its release tables stay the same;
* a model saved by a run on one backend has its identifiers re-quoted (the only
  difference between the dialects' SQL) so it can be reused on the other.

Nothing here sees a data value: only filter words, popcounts, tokens and ids cross over.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path

import duckdb

from simlink.errors import SimlinkError

# Shuffle partitions per local core (Spark's default of 200 is sized for clusters; each
# partition is a task, and on small data their overhead dominates).
PARTITIONS_PER_CORE = 2
# Spark logs WARN lines (loopback address, native Hadoop) at every start: errors only.
_LOG4J = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
"""


def _require_pyspark():
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SimlinkError("backend 'spark' needs pyspark: pip install 'simlink[spark]'") from None
    return SparkSession


def spark_memory(memory_limit: str) -> str:
    """DuckDB's memory limit ('6GB', '512MB') in the JVM's notation ('6g', '512m')."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT])i?B?\s*", memory_limit, flags=re.IGNORECASE)
    if not match:
        raise SimlinkError("memory limit must look like 6GB or 512MB")
    return f"{match.group(1)}{match.group(2).lower()}"


def _log_config(temp_dir: str) -> str:
    path = Path(temp_dir) / "log4j2.properties"
    path.write_text(_LOG4J, encoding="utf-8")
    return path.as_uri()


_OWN_CHECKPOINTS: set[str] = set()


def session(threads: int | None, memory_limit: str):
    """The active Spark session, or a new local one (JVM start: ~10 s). Its scratch folder
    lives as long as the JVM (Spark removes its block files at exit)."""
    SparkSession = _require_pyspark()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from splink.backends.spark import similarity_jar_location

    cores = threads or os.cpu_count() or 1
    scratch = tempfile.mkdtemp(prefix="simlink-spark-")
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("simlink-link")
        .config("spark.driver.memory", spark_memory(memory_limit))
        .config("spark.sql.shuffle.partitions", str(max(2, PARTITIONS_PER_CORE * cores)))
        .config("spark.default.parallelism", str(max(2, PARTITIONS_PER_CORE * cores)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # adaptive execution re-plans every stage; with few partitions it has nothing to
        # coalesce and costs more than it saves (300 people on 2 cores: 79 s -> 55 s)
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", scratch)
        # Splink's string-similarity UDFs: simlink's Dice SQL does not need them, but Splink
        # registers them at start and warns when the jar is missing.
        .config("spark.jars", similarity_jar_location())
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_log_config(scratch)}")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def make_db_api(threads: int | None, memory_limit: str, temp_dir: str):
    """Splink's SparkAPI on :func:`session`, with a checkpoint folder for this run."""
    spark = session(threads, memory_limit)
    from splink import SparkAPI

    current = spark.sparkContext.getCheckpointDir()
    if not current or current in _OWN_CHECKPOINTS:  # a caller's own checkpoint folder is kept
        checkpoints = Path(temp_dir) / "spark-checkpoints"
        checkpoints.mkdir(exist_ok=True)
        spark.sparkContext.setCheckpointDir(str(checkpoints))
        _OWN_CHECKPOINTS.add(spark.sparkContext.getCheckpointDir())
    return SparkAPI(spark_session=spark, break_lineage_method="parquet")


def register_encodings(db_api, con: duckdb.DuckDBPyConnection):
    """Ship ``link_encodings`` to Spark (Arrow, through the driver) and register it.
    An earlier run in the same session left its view behind: it is replaced."""
    table = con.sql("SELECT * FROM link_encodings ORDER BY enc_id").to_arrow_table()
    spark_df = db_api.spark.createDataFrame(table)
    db_api.spark.catalog.dropTempView("link_encodings")
    return db_api.register(spark_df, dataset_display_name="link_encodings")


def scored_to_duckdb(con: duckdb.DuckDBPyConnection, scored, name: str = "link_scored_frame") -> str:
    """Bring Splink's kept pairs (ids, weight, probability) into the working DuckDB database,
    where both backends cluster them the same way."""
    frame = scored.as_spark_dataframe().select("enc_id_l", "enc_id_r", "match_weight", "match_probability").toArrow()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM frame")
    return name


_QUOTES = {"duckdb": '"', "spark": "`"}


def requote(sql: str, source: str, target: str) -> str:
    """``sql`` with its quoted identifiers re-quoted for ``target``; nothing else changes
    (a full transpile would also turn Spark's CAST into DuckDB's TRY_CAST and so on)."""
    import sqlglot
    from sqlglot.tokens import TokenType

    if sql.strip().upper() == "ELSE":
        return sql
    try:
        tokens = sqlglot.Dialect.get_or_raise(source).tokenize(sql)
    except sqlglot.errors.SqlglotError:
        raise SimlinkError(f"model SQL could not be read as {source} SQL") from None
    quote = _QUOTES[target]
    for token in reversed(tokens):
        if token.token_type == TokenType.IDENTIFIER and sql[token.start] in _QUOTES.values():
            if quote in token.text:
                raise SimlinkError(f"a column name in the model cannot be quoted for {target}")
            sql = sql[:token.start] + quote + token.text + quote + sql[token.end + 1:]
    return sql


def port_model(model: dict, dialect: str) -> dict:
    """A saved Splink model with its SQL rewritten for ``dialect`` ('duckdb' or 'spark').

    The trained numbers (prior, m and u per level, term-frequency settings) are untouched;
    simlink's comparisons are portable SQL, so only identifier quoting (``"col"`` vs
    `` `col` ``) differs between the dialects.
    """
    source = model.get("sql_dialect", dialect)
    if source == dialect:
        return model
    if source not in _QUOTES or dialect not in _QUOTES:
        raise SimlinkError(f"cannot reuse a model of the {source} backend on {dialect}")
    ported = copy.deepcopy(model)
    ported["sql_dialect"] = dialect
    for comparison in ported.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            level["sql_condition"] = requote(level["sql_condition"], source, dialect)
    for rule in ported.get("blocking_rules_to_generate_predictions", []):
        if isinstance(rule, dict):
            rule["blocking_rule"] = requote(rule["blocking_rule"], source, dialect)
            rule["sql_dialect"] = dialect
        # a plain-string rule carries no dialect: Splink reads it in the linker's dialect
    return ported
