"""Linkage: find the same person across and within agencies from encodings alone.

``link_files(paths, output)`` checks the encoded files, collapses identical encodings,
trains (or reuses) a Splink model on Dice comparisons of the filters, scores the blocked
pairs, clusters them into persons and writes the linkage database. See docs/linkage.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from simlink import __version__

from simlink.errors import SchemaError, SimlinkError
from simlink.link import model as link_model
from simlink.link import clusters as clusters_sql
from simlink.link.block_caps import DEFAULT_CAP, cap_blocks, scoped_signatures
from simlink.link.comparisons import DiceAtThresholds
from simlink.link.load import LoadStats, check_inputs, load, load_encodings
from simlink.link.output import (check_output, model_meta_path, sidecars, write_charts, write_database,
                                 write_model_file)

from simlink.defaults import DEFAULT_THRESHOLD  # defined where the CLI can read it without DuckDB

__all__ = ["DEFAULT_THRESHOLD", "DiceAtThresholds", "LinkResult", "link_files", "load_encodings", "read_model_file"]


@dataclass
class LinkResult:
    """What a linkage run produced, for the summary line and the benchmarks."""

    output: Path
    events: int
    distinct_encodings: int
    persons: int
    threshold: float
    trained: bool
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    model_file: Path | None = None
    charts: list[Path] = field(default_factory=list)
    decision: dict = field(default_factory=dict)

    def _evidence(self) -> str:
        bits = self.decision.get("evidence_bits")
        return f" (evidence >= {bits:.1f} bits)" if bits is not None else ""
    notes: list[str] = field(default_factory=list)  # what training left out or assumed

    def line(self) -> str:
        total = sum(self.seconds.values())
        return (f"linked {self.events:,} events ({self.distinct_encodings:,} distinct encodings) into "
                f"{self.persons:,} persons at match probability >= {self.threshold:.4g}{self._evidence()}; "
                f"{self.counts.get('blocked_pairs', 0):,} pairs compared; {total:.1f} s; wrote {self.output}")


def read_model_file(path: str | Path, fingerprint: str | None = None) -> dict:
    """The Splink model in a model file written by ``link`` (or any Splink settings JSON).

    With ``fingerprint``, refuse a model whose simlink metadata (``*.model.simlink.json``
    beside it, or inside a format-1 file) names another schema. A plain Splink JSON without
    metadata is accepted; the fields it compares are still checked against the inputs.
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError("model file not found", path=path)
    doc = _read_json(path)
    if isinstance(doc, dict) and "splink" in doc:  # model format 1: metadata and model in one file
        found = doc.get("schema_fingerprint")
        doc = doc["splink"]
    else:
        meta_path = model_meta_path(path)
        meta = _read_json(meta_path) if meta_path.exists() else {}
        found = meta.get("schema_fingerprint", fingerprint) if isinstance(meta, dict) else None
    if fingerprint is not None and found != fingerprint:
        raise SchemaError("model was trained on encodings of a different schema (fingerprints differ)", path=path)
    return link_model.parse_model(json.dumps(doc), str(path))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SchemaError("model file is not JSON (expected a model saved by 'simlink link')", path=path) from None


def _connect(memory_limit: str, threads: int | None, temp_dir: str) -> duckdb.DuckDBPyConnection:
    """The working database: in memory up to ``memory_limit``, spilling to ``temp_dir``."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit='{memory_limit}'")
    except duckdb.Error:
        con.close()
        raise SimlinkError("memory limit must look like 6GB or 512MB") from None
    con.execute("SET temp_directory='" + temp_dir.replace("'", "''") + "'")
    if threads:
        con.execute(f"SET threads={int(threads)}")
    con.execute("SET preserve_insertion_order=false")
    return con


def link_files(
    paths: list[str | Path],
    output: str | Path,
    *,
    threshold: float | None = None,
    decision_margin: float = clusters_sql.DEFAULT_MARGIN,
    model: str | Path | dict | None = None,
    overwrite: bool = False,
    backend: str = "duckdb",
    charts: bool = True,
    memory_limit: str = "6GB",
    threads: int | None = None,
    train_options: link_model.TrainOptions | None = None,
    keep_probability: float | None = None,
    block_cap: int | None = DEFAULT_CAP,
    temp_dir: str | Path | None = None,
    progress: bool | None = None,
    predict_slice_pairs: int | None = None,
    _keep_working: dict | None = None,
) -> LinkResult:
    """Link encoded files into persons and write the linkage database at ``output``.

    ``threshold``: link pairs at or above this match probability; default (None) the rule
    of :mod:`simlink.link.clusters`: match weight >= log2(candidate pairs per encoding) +
    ``decision_margin``, which tightens as candidates grow.
    ``model``: a model file (or dict) from an earlier run to reuse instead of training.
    ``keep_probability``: lowest match probability kept from prediction (default: the
    threshold); only benchmarks lower it, to try several thresholds on one scoring.
    """
    if threshold is not None and not 0 < threshold < 1:
        raise SchemaError("threshold must be a match probability between 0 and 1")
    output = Path(output)
    check_output(output, overwrite)
    inputs = check_inputs(list(paths))
    if isinstance(model, (str, Path)):
        model = read_model_file(model, inputs.fingerprint)
    if temp_dir is not None and not Path(temp_dir).is_dir():
        raise SimlinkError("temporary folder does not exist", path=temp_dir)
    link_model.quiet_splink()
    steps = ["load"] + (["start"] if backend != "duckdb" else []) + (["train"] if model is None else []) + [
        "block", "predict", "cluster", "write"]
    phases = link_model.Phases(progress=link_model.progress_bar(steps, progress))
    with tempfile.TemporaryDirectory(prefix="simlink-link-", dir=temp_dir) as tmp:
        con = _connect(memory_limit, threads, tmp)
        try:
            started = phases.begin("load")
            stats: LoadStats = load(con, inputs)
            caps = cap_blocks(con, "link_encodings", block_cap, signatures=scoped_signatures(inputs.schema))
            fields = link_model.used_fields(con, inputs.schema)
            phases.timed("load", started)
            started = phases.begin("start") if backend != "duckdb" else time.perf_counter()
            db_api = link_model.make_db_api(backend, con, threads=threads, memory_limit=memory_limit, temp_dir=tmp)
            table = link_model.register_encodings(db_api, backend, con)
            if backend != "duckdb":  # session start and hand-over; nothing to time on DuckDB
                phases.timed("start", started)
            if model is not None:
                model = link_model.port_model(model, backend)
                from simlink.link.settings import comparisons as schema_comparisons

                known = {c.create_output_column_name() for c in schema_comparisons(inputs.schema)}
                missing = set(link_model.model_fields(model)) - known
                if missing:
                    raise SchemaError("model compares fields that the encoded files do not have")
            linker = link_model.build_linker(db_api, table, inputs.schema, fields, model)
            notes = [f"field {f.name} left out of the model: no usable values in any input"
                     for f in inputs.schema.fields if f.name not in fields]
            if model is None:
                link_model.train(linker, inputs.schema, fields, train_options or link_model.TrainOptions(), phases,
                                 backend, con=con, distinct=stats.distinct_encodings, notes=notes)
            link_model.block(linker, phases)
            prior = link_model.model_json(linker)["probability_two_random_records_match"]
            decision = (clusters_sql.weight_decision(prior, phases.counts["blocked_pairs"], stats.distinct_encodings,
                                                     decision_margin)
                        if threshold is None else clusters_sql.probability_decision(prior, threshold))
            keep_weight = decision.match_weight if keep_probability is None else min(
                decision.match_weight, clusters_sql.probability_decision(prior, keep_probability).match_weight)
            scored = link_model.predict(linker, keep_weight, phases, backend=backend, con=con, db_api=db_api,
                                        slice_pairs=predict_slice_pairs)
            started = phases.begin("cluster")
            scored_table = link_model.scored_into_duckdb(con, scored, backend)
            linked_pairs = clusters_sql.cluster_pairs(con, scored_table, decision, "link_clusters")
            phases.timed("cluster", started)
            clusters_table = "link_clusters"
            started = phases.begin("write")
            trained_model = link_model.model_json(linker)
            metadata = {
                "simlink_version": __version__,
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "schema_fingerprint": inputs.fingerprint,
                "key_check": inputs.key_check,
                "inputs": inputs.description(),
                "threshold_match_probability": decision.match_probability,
                "decision": decision.as_dict(),
                "model_reused": model is not None,
                "backend": backend,
                "fields_compared": link_model.model_fields(trained_model),
                "training_notes": notes,
                "blocking_rules": [f"blk__{b.name}" for b in inputs.schema.blocking],
                "blocking_cap": block_cap,
                "model_error_estimate": _model_error(con, scored_table, decision.match_probability),
            }
            counts = dict(phases.counts)
            stats_rows = [("blocked_pairs", counts.get("blocked_pairs", 0)),
                          ("pairs_at_or_above_threshold", linked_pairs),
                          ("blocking_tokens_over_cap", sum(caps.oversized_values.values())),
                          ("blocking_tokens_refined", sum(caps.refined_encodings.values())),
                          ("blocking_tokens_dropped", sum(caps.dropped_encodings.values())),
                          ("encodings_with_fallback_tokens", caps.fallback_encodings)]
            written_stats = write_database(con, output, clusters_table, metadata, trained_model, stats_rows)
            model_file, charts_folder = sidecars(output)
            write_model_file(model_file, trained_model, inputs.fingerprint)
            chart_paths = write_charts(linker, charts_folder) if charts else []
            if _keep_working is not None:
                _keep_working["scored"] = con.execute(
                    f"SELECT enc_id_l, enc_id_r, match_probability, match_weight FROM {scored_table}").df()
                _keep_working["events"] = con.execute("SELECT agency, record_id, enc_id FROM link_events").df()
            phases.timed("write", started)
        finally:
            con.close()
            phases.close()
    persons = dict(written_stats)["persons"]
    return LinkResult(output, stats.events, stats.distinct_encodings, persons, decision.match_probability, model is None,
                      phases.seconds, counts | {"distinct_encodings": stats.distinct_encodings},
                      model_file, chart_paths, decision.as_dict(), notes)


def _model_error(con: duckdb.DuckDBPyConnection, scored_table: str, threshold: float) -> dict:
    """Linkage error as the model itself expects it, over the scored pairs of distinct
    encodings: among pairs at or above the threshold, sum(1 - p) are expected false links;
    pairs kept below it hold sum(p) expected missed links (a lower bound: pairs never
    blocked or dropped below the keep level are not counted)."""
    row = con.execute(f"""SELECT count(*) FILTER (match_probability >= {threshold!r}),
                     sum(1 - match_probability) FILTER (match_probability >= {threshold!r}),
                     sum(match_probability) FILTER (match_probability < {threshold!r}) FROM {scored_table}""").fetchall()[0]
    linked, false_links, missed = int(row[0] or 0), float(row[1] or 0), float(row[2] or 0)
    return {"source": "Splink match probabilities of the scored pairs (model-based, not "
                      "measured against truth)",
            "pairs_linked": linked, "expected_false_links": round(false_links, 1),
            "expected_pairwise_precision": round(1 - false_links / linked, 4) if linked else None,
            "expected_missed_links_among_scored_pairs": round(missed, 1)}
