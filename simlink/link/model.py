"""Train, predict and cluster with Splink on the distinct encodings.

Unsupervised throughout (no labels exist at the linkage unit):

* prior (probability two random encodings match) from deterministic rules — three of the
  four main filters identical — divided by an assumed recall; Splink counts possible pairs
  on the one deduplicated table, so the count is right however many agencies there are;
* u by random sampling with an explicit ``max_pairs``;
* m by expectation-maximisation over two blocking passes (date of birth; given + family
  name), each estimating the fields it does not block on;
* prediction on the OR of the keyed blocking tokens (capped: :mod:`simlink.link.block_caps`),
  scored in slices of at most :data:`PREDICT_SLICE_PAIRS` blocked pairs on DuckDB, then the
  decision rule and connected components in DuckDB (:mod:`simlink.link.clusters`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb

from simlink.errors import SimlinkError
from simlink.link import settings as link_settings
from simlink.link.load import hash_column
from simlink.schema import Schema

# Share of true matching pairs of distinct encodings that the prior rules find; measured on
# synthetic data at medium errors (docs/linkage.md). Only scales the prior.
PRIOR_RECALL = 0.5

# Blocked pairs scored in one Splink predict on DuckDB; more are scored on a k x k grid of
# slices of at most about this many, so the join of pairs to the wide encodings never holds
# all pairs and all encodings at once (at 10M contacts ~350M pairs, one pass, spilled 70 GB).
# benchmarks/predict_slices.py, 3M contacts at a 1.5GB limit (the squeeze of 5GB at 10M):
# one pass spilled 10.3 GB, this size's 2 x 2 grid 3.4 GB, 3 x 3 and 5 x 4 no less (2.3-2.8
# GB) while 20 slices cost the most time; at 10M it gives 4 x 4.
PREDICT_SLICE_PAIRS = 25_000_000
SCORED_TABLE = "link_scored_pairs"


@dataclass
class TrainOptions:
    u_max_pairs: float = 2e6
    em_max_pairs: float | None = 2e6
    seed: int = 42
    prior_recall: float = PRIOR_RECALL
    # Chunks of the u-sampling cross join (Splink stops early once every level is seen
    # often enough). None: Splink's 10 on DuckDB, 1 on Spark, where each chunk is a Spark
    # job of its own (u: 94 s -> 41 s at 2,000 people on 2 busy cores).
    u_chunks: int | None = None
    # Format 2: m of every comparison from the EM inside the scopes, with the pairs that
    # collapsing removed put back, instead of Splink's EM passes (see scoped_u.pattern_counts).
    scoped_m: bool = True
    # Format 2: u of the unconditional comparisons from random pairs with the matches among
    # them taken out (scoped_u.random_pair_u), replacing Splink's random-sampling u.
    random_u: bool = True


@dataclass
class Phases:
    """Wall-clock seconds per phase, counts the benchmark reports, and the progress bar."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    progress: Any = None

    def begin(self, name: str) -> float:
        """Show ``name`` as the running phase; returns its start time."""
        self.show(name)
        return time.perf_counter()

    def show(self, text: str) -> None:
        """Say what is running now (a phase, or a step inside one) on the bar."""
        if self.progress is not None:
            self.progress.set_description(f"link: {text}")

    def timed(self, name: str, started: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        if self.progress is not None:
            self.progress.update(1)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()


def progress_bar(steps: list[str], enabled: bool | None):
    """A tqdm bar over the link phases on stderr; by default only when stderr is a terminal
    (a log file or a pipe gets no bar, and tests none)."""
    import sys

    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    return tqdm(total=len(steps), file=sys.stderr, unit="phase", leave=False, desc=f"link: {steps[0]}",
                bar_format="{desc}: {n_fmt}/{total_fmt} phases [{elapsed}]")


def quiet_splink() -> None:
    """Splink logs SQL and progress at INFO; keep the CLI output to simlink's own lines."""
    logging.getLogger("splink").setLevel(logging.WARNING)


def make_db_api(backend: str, con: duckdb.DuckDBPyConnection | None = None, *, threads: int | None = None,
                memory_limit: str = "6GB", temp_dir: str | None = None):
    """Splink's database API for ``backend``; Spark specifics live in :mod:`simlink.link.spark`."""
    if backend == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI(connection=con)
    if backend == "spark":
        from simlink.link import spark

        if temp_dir is None:
            raise SimlinkError("the spark backend needs a temporary folder for its checkpoints")
        return spark.make_db_api(threads, memory_limit, temp_dir)
    raise SimlinkError(f"unknown backend '{backend}' (use duckdb or spark)")


def register_encodings(db_api, backend: str, con: duckdb.DuckDBPyConnection):
    """Hand the distinct-encodings table to the backend as a Splink dataframe."""
    if backend == "duckdb":
        return db_api.register("link_encodings")
    from simlink.link import spark

    return spark.register_encodings(db_api, con)


def used_fields(con: duckdb.DuckDBPyConnection, schema: Schema) -> list[str]:
    """Fields with at least one value among the encodings (an all-missing field cannot train)."""
    checks = ", ".join("count(*) FILTER (WHERE " + " OR ".join(f"{c.prefix}__pop > 0" for c in f.copies) + ")"
                       for f in schema.fields)
    counts = con.execute(f"SELECT {checks} FROM link_encodings").fetchall()[0]
    return [f.name for f, n in zip(schema.fields, counts) if n > 0]


def build_linker(db_api, table, schema: Schema, fields: list[str], model: dict | None = None):
    from splink import Linker

    settings: Any = model if model is not None else link_settings.build_settings(schema, fields)
    return Linker(table, settings, log_level=logging.ERROR)  # EM "level not observed" notes bury the summary


def model_fields(model: dict) -> list[str]:
    return [c["output_column_name"] for c in model.get("comparisons", [])]


def _prior(linker) -> float:
    # Splink keeps the estimate here and offers no public getter; read-only use.
    return float(linker._settings_obj._probability_two_random_records_match)


def _set_prior(linker, value: float) -> None:
    linker._settings_obj._probability_two_random_records_match = value


def estimate_prior(linker, schema: Schema, fields: list[str], options: TrainOptions, distinct: int,
                   notes: list[str]) -> None:
    """Prior from deterministic rules, looser rules, or a stated default — never 0 or 1.

    Identical encodings are collapsed before linkage, so on data whose only fields are
    names and date of birth (FEBRL) every pair the strict rules would find is one encoding
    and the estimate is 0, which Splink cannot take a logarithm of.
    """
    for rules, label in ((link_settings.prior_rules(schema, fields), None),
                         (loose_prior_rules(schema, fields), "two identical fields")):
        if not rules:
            continue
        linker.training.estimate_probability_two_random_records_match(rules, recall=options.prior_recall)
        if 0 < _prior(linker) < 1:
            if label:
                notes.append(f"prior: the strict rules found no pairs; estimated from {label} instead")
            return
    fallback = min(0.5, 1 / max(distinct - 1, 1))
    _set_prior(linker, fallback)
    notes.append(f"prior: no rule found a pair; assumed one true match per encoding ({fallback:.3g})")


def loose_prior_rules(schema: Schema, fields: list[str]) -> list[str]:
    """Any two of the main identifiers identical: for data where the strict rules find nothing."""
    if any(link_settings.is_scoped(f) for f in schema.fields):
        return []  # format 2's own rules are already two identical whole-value tokens
    core = [n for n in ("given_name", "family_name", "date_of_birth", "postcode") if n in fields] or fields[:3]
    return [f"l.{hash_column(a)} = r.{hash_column(a)} AND l.{hash_column(b)} = r.{hash_column(b)}"
            for i, a in enumerate(core) for b in core[i + 1:]]


def _rule_label(rule) -> str:
    """Field names a training pass blocks on (column names only, never values)."""
    sql = rule.get_blocking_rule("duckdb").blocking_rule_sql
    names = sorted(set(re.findall(r"l\.\"?(?:fh__|eq__|blk__)?(\w+?)\"?\s*=", sql)))
    return " + ".join(names) or "its rule"


def train(linker, schema: Schema, fields: list[str], options: TrainOptions, phases: Phases,
          backend: str = "duckdb", con: duckdb.DuckDBPyConnection | None = None, *, distinct: int = 0,
          notes: list[str] | None = None) -> None:
    """Prior, u and m; a training pass the data cannot support is skipped with a note."""
    from splink.internals.exceptions import EMTrainingException

    notes = notes if notes is not None else []
    started = phases.begin("train")
    estimate_prior(linker, schema, fields, options, distinct, notes)
    chunks = options.u_chunks or (1 if backend == "spark" else 10)
    linker.training.estimate_u_using_random_sampling(max_pairs=options.u_max_pairs, seed=options.seed,
                                                     num_chunks=chunks)
    scoped_m = _scoped_u(linker, schema, fields, options, con) if con is not None else False
    trained = 0
    for rule in ([] if scoped_m else link_settings.em_blocking_rules(schema, fields)):
        # Splink's training session edits the linker's settings in place before it can fail
        # (drops the blocked comparisons, sets its own prior): keep a copy to put back.
        before = linker._settings_obj.core_model_settings.copy()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=options.em_max_pairs)
            trained += 1
        except (EMTrainingException, ValueError, ZeroDivisionError, OverflowError):
            # No pairs in the pass, or too few to estimate from: leave it out, say so.
            linker._settings_obj.core_model_settings = before
            notes.append(f"training pass blocked on {_rule_label(rule)} left out: too few pairs agree on it")
    if trained == 0 and not scoped_m:
        notes.append("no training pass could run: m probabilities are Splink's defaults")
    phases.timed("train", started)


def _scoped_u(linker, schema: Schema, fields: list[str], options: TrainOptions,
              con: duckdb.DuckDBPyConnection) -> bool:
    """Format 2: u of the comparisons compared only inside scopes, and (``options.scoped_m``)
    m of every comparison, by EM inside the scopes (see :mod:`simlink.link.scoped_u`).
    Returns whether m was set (then Splink's EM passes are not run)."""
    from simlink.link import scoped_u
    from simlink.link.load import scope_column

    creators = link_settings.comparisons(schema, fields)
    conditional = [c.create_output_column_name() for c in creators if link_settings.is_conditional(c)]
    if not conditional:
        return False
    comparisons = [c.get_comparison("duckdb") for c in creators]
    names = {f.name: ("names" if link_settings.name_pair(schema, fields) and f.normaliser == "person_name"
                      else f.name) for f in schema.fields}
    scope_keys = sorted({c.scope for f in schema.fields if f.name in fields for c in f.copies if c.scope})
    scopes = {scope_column(k): {names[p.split(":")[0]] for p in schema.blocking_key(k).parts} for k in scope_keys}
    found = scoped_u.estimate(con, comparisons, conditional, scopes, link_settings.prior_rules(schema, fields),
                              max_pairs=int(options.u_max_pairs), seed=options.seed,
                              events="link_events" if options.scoped_m else None)
    scoped_u.apply(linker, found.u)
    if options.scoped_m and all(c.create_output_column_name() in found.m for c in creators):
        scoped_u.apply(linker, found.m, "m")
        if options.random_u:
            u = scoped_u.random_pair_u(con, comparisons, found.m, link_settings.prior_rules(schema, fields),
                                       max_pairs=int(options.u_max_pairs), seed=options.seed)
            scoped_u.apply(linker, {n: v for n, v in u.items() if n not in conditional})
        return True
    return False


def block(linker, phases: Phases) -> None:
    started = phases.begin("block")
    pairs = linker.inference.compute_blocked_pairs_for_predict()
    phases.counts["blocked_pairs"] = _count(pairs)
    phases.timed("block", started)


def predict(linker, keep_weight: float, phases: Phases, *, backend: str = "duckdb",
            con: duckdb.DuckDBPyConnection | None = None, db_api=None, slice_pairs: int | None = None):
    """Score the blocked pairs, keeping those with match weight >= ``keep_weight``.

    On DuckDB (given the working connection ``con`` and its ``db_api``), more blocked pairs
    than ``slice_pairs`` (default :data:`PREDICT_SLICE_PAIRS`) are scored in slices
    (:func:`predict_in_slices`); Spark partitions its own work.
    """
    started = phases.begin("predict")
    grid = slice_grid(phases.counts.get("blocked_pairs", 0), slice_pairs or PREDICT_SLICE_PAIRS)
    if backend == "duckdb" and con is not None and db_api is not None and grid != (1, 1):
        scored = predict_in_slices(linker, con, db_api, keep_weight, grid, phases)
    else:
        scored = linker.inference.predict(threshold_match_weight=keep_weight, warning_mode="never")
        grid = (1, 1)
    phases.counts["predict_slices"] = grid[0] * grid[1]
    phases.counts["pairs_kept"] = _count(scored)
    phases.timed("predict", started)
    return scored


def slice_grid(pairs: int, slice_pairs: int) -> tuple[int, int]:
    """A k x k grid of slices (left key by right key) for ``pairs`` blocked pairs, with at most
    about ``slice_pairs`` pairs a cell: a cell's query needs only about 1/k of the encodings on
    each side (a side left whole would join every slice's pairs to nearly all encodings).
    At 3M contacts under a memory limit as tight as 5GB at 10M, one pass spilled 10 GB and
    a 3 x 2 grid 3 GB (benchmarks/predict_slices.py, docs/linkage.md)."""
    if slice_pairs < 1:
        raise SimlinkError("predict slice size must be at least one pair")
    wanted = -(-pairs // slice_pairs)  # ceiling
    if wanted <= 1:
        return 1, 1
    side = math.isqrt(wanted - 1) + 1  # ceiling of the square root
    return side, side


def predict_in_slices(linker, con: duckdb.DuckDBPyConnection, db_api, keep_weight: float,
                      grid: tuple[int, int], phases: Phases):
    """Score the blocked pairs slice by slice; returns one table of the kept pairs.

    A pair is in slice (i, j) of the k x k grid when hash(left key) % k = i and hash(right
    key) % k = j: every pair in exactly one slice, whichever rules blocked it. Each slice is
    registered with Splink as the pairs to score (its DuckDB path then reads only the
    encodings the slice names), predicted at the same threshold, appended to the result and
    dropped. The full blocked-pairs table is dropped at the end (nothing after predict
    reads it). Match weights are per pair, so the result equals the one-pass prediction.
    """
    rows, cols = grid
    full = linker.inference.compute_blocked_pairs_for_predict()
    created = False
    try:
        for i in range(rows):
            for j in range(cols):
                phases.show(f"predict slice {i * cols + j + 1}/{rows * cols}")
                name = f"link_pair_slice_{i}_{j}"
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {full.physical_name} "
                            f"WHERE hash(join_key_l) % {rows} = {i} AND hash(join_key_r) % {cols} = {j}")
                registered = linker.table_management.register_blocked_pairs_for_predict(db_api.register(name))
                try:
                    part = linker.inference.predict(threshold_match_weight=keep_weight, warning_mode="never")
                finally:
                    registered.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
                con.execute(f"INSERT INTO {SCORED_TABLE} SELECT * FROM {part.physical_name}" if created else
                            f"CREATE OR REPLACE TABLE {SCORED_TABLE} AS SELECT * FROM {part.physical_name}")
                created = True
                part.drop_table_from_database_and_remove_from_cache()
    finally:
        full.drop_table_from_database_and_remove_from_cache()
    return db_api.register(SCORED_TABLE)


def scored_into_duckdb(con: duckdb.DuckDBPyConnection, scored, backend: str) -> str:
    """The kept pairs as a table of the working DuckDB database, for :mod:`simlink.link.clusters`
    (Spark's come through the driver as Arrow: only ids and weights)."""
    if backend == "duckdb":
        return scored.physical_name
    from simlink.link.spark import scored_to_duckdb

    return scored_to_duckdb(con, scored)


def _count(splink_df) -> int:
    return int(splink_df.as_duckdbpyrelation().count("*").fetchall()[0][0]) if hasattr(
        splink_df, "as_duckdbpyrelation") else int(splink_df.as_spark_dataframe().count())


def model_json(linker) -> dict:
    return linker.misc.save_model_to_json()


def port_model(model: dict, backend: str) -> dict:
    """A model saved on either backend, with its SQL in ``backend``'s dialect."""
    from simlink.link.spark import port_model as _port

    return _port(model, backend)


def parse_model(text: str, source: str) -> dict:
    try:
        model = json.loads(text)
    except json.JSONDecodeError:
        raise SimlinkError("model file is not JSON (expected a model saved by 'simlink link')", path=source) from None
    if not isinstance(model, dict) or "comparisons" not in model:
        raise SimlinkError("model file has no comparisons (expected a model saved by 'simlink link')", path=source)
    return model
