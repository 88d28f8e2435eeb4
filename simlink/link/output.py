"""Write the linkage database, the model file and the charts.

The database holds only what later steps need: ``events`` and ``event_person`` (one row per
input event), ``run_metadata`` (JSON values), ``model`` (the trained Splink model, no data)
and ``link_stats`` (summary counts). Filter words, blocking tokens, encoding ids and
pairwise scores stay in the working database and are never written here. The file is
built beside the target and renamed into place, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import duckdb

from simlink import outputs
from simlink.errors import OutputExistsError, SimlinkError


def sidecars(output: Path) -> tuple[Path, Path]:
    """The model file and the charts folder written beside the linkage database."""
    return output.with_name(output.name + ".model.json"), output.with_name(output.name + ".charts")


def model_meta_path(model_file: Path) -> Path:
    """simlink's note beside a model file (``x.model.json`` -> ``x.model.simlink.json``).

    Splink refuses settings with keys it does not know, so the schema fingerprint and
    versions cannot live inside the model file if plain Splink is to read it.
    """
    stem = model_file.name[:-5] if model_file.name.endswith(".json") else model_file.name
    return model_file.with_name(stem + ".simlink.json")


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse to replace the database, its model files or its charts unless told to."""
    if not overwrite:
        model_file, charts = sidecars(output)
        for path in (output, model_file, model_meta_path(model_file), charts):
            if path.exists():
                raise OutputExistsError("output already exists (use --overwrite to replace it)", path=path)
    outputs.check_target(output)
    outputs.clean_stale_partials(output)


def person_keys_sql(clusters_table: str, salt: int) -> str:
    """Events to person keys: clusters renumbered 1..n in an order keyed by a per-run salt,
    so a person key says nothing about the encodings (cluster ids are encoding ids)."""
    return f"""
        WITH c AS (SELECT enc_id, cluster_id FROM {clusters_table}),
        k AS (SELECT cluster_id, CAST(row_number() OVER (ORDER BY hash(cluster_id, {salt}), cluster_id) AS BIGINT) AS person_key
              FROM (SELECT DISTINCT cluster_id FROM c))
        SELECT e.agency, e.record_id, k.person_key
        FROM link_events e JOIN c USING (enc_id) JOIN k USING (cluster_id)"""


def summary_stats(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Counts for the reviewer; computed from the working tables before they are dropped."""
    rows = [
        ("events", "SELECT count(*) FROM link_events"),
        ("distinct_encodings", "SELECT count(DISTINCT enc_id) FROM link_events"),
        ("persons", "SELECT count(DISTINCT person_key) FROM link_event_person"),
        ("persons_with_one_event", "SELECT count(*) FROM (SELECT person_key FROM link_event_person GROUP BY 1 HAVING count(*) = 1)"),
        ("persons_in_several_agencies", "SELECT count(*) FROM (SELECT person_key FROM link_event_person GROUP BY 1 HAVING count(DISTINCT agency) > 1)"),
        ("largest_person_events", "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM link_event_person GROUP BY person_key)"),
    ]
    out = [(name, int(con.execute(sql).fetchall()[0][0])) for name, sql in rows]
    for agency, n in con.execute("SELECT agency, count(DISTINCT person_key) FROM link_event_person GROUP BY 1 ORDER BY 1").fetchall():
        out.append((f"persons_in_{agency}", int(n)))
    return out


def write_database(con: duckdb.DuckDBPyConnection, output: Path, clusters_table: str,
                   metadata: dict, model: dict, stats: list[tuple[str, int]] | None = None) -> list[tuple[str, int]]:
    """Materialise event_person in the working db, then copy the release tables to ``output``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE link_event_person AS {person_keys_sql(clusters_table, secrets.randbits(62))}")
    stats = (stats or []) + summary_stats(con)
    partial = outputs.partial_path(output)
    outputs.remove(partial)
    target = str(partial).replace("'", "''")
    try:
        con.execute(f"ATTACH '{target}' AS link_out")
        con.execute("""CREATE TABLE link_out.events AS
                       SELECT agency, record_id, service, contact_date FROM link_events ORDER BY agency, record_id""")
        con.execute("""CREATE TABLE link_out.event_person AS
                       SELECT agency, record_id, person_key FROM link_event_person ORDER BY agency, record_id""")
        con.execute("CREATE TABLE link_out.run_metadata (key VARCHAR, value VARCHAR)")
        con.executemany("INSERT INTO link_out.run_metadata VALUES (?, ?)",
                        [(k, json.dumps(v, sort_keys=True, default=str)) for k, v in metadata.items()])
        con.execute("CREATE TABLE link_out.model (name VARCHAR, json VARCHAR)")
        con.execute("INSERT INTO link_out.model VALUES ('splink', ?)", [json.dumps(model, sort_keys=True)])
        con.execute("CREATE TABLE link_out.link_stats (statistic VARCHAR, value BIGINT)")
        con.executemany("INSERT INTO link_out.link_stats VALUES (?, ?)", stats)
        con.execute("DETACH link_out")
        os.replace(partial, output)
    except (OSError, duckdb.IOException) as exc:
        raise SimlinkError(f"cannot write ({outputs.reason(exc)})", path=output) from None
    finally:
        if partial.exists():
            try:
                con.execute("DETACH link_out")
            except (duckdb.Error, KeyboardInterrupt):
                pass
        outputs.remove(partial)
        outputs.remove(partial.with_name(partial.name + ".wal"))
    return stats


MODEL_FORMAT = 2  # 1: {"simlink_model": 1, "schema_fingerprint", "splink": {...}} in one file


def write_model_file(path: Path, model: dict, fingerprint: str) -> Path:
    """Write Splink's own settings JSON to ``path`` (``Linker(table, path)`` reads it) and
    simlink's metadata beside it; returns the metadata file."""
    from importlib.metadata import version

    from simlink import __version__

    outputs.write_text(path, json.dumps(model, indent=1, sort_keys=True))
    meta = model_meta_path(path)
    outputs.write_text(meta, json.dumps({"simlink_model": MODEL_FORMAT, "model_file": path.name,
                                         "schema_fingerprint": fingerprint, "simlink_version": __version__,
                                         "splink_version": version("splink")}, indent=1, sort_keys=True))
    return meta


def write_charts(linker, folder: Path) -> list[Path]:
    """Splink's match-weights and m/u charts as standalone HTML for the reviewer, with the
    vega scripts Splink ships written inline: a linkage unit is often offline."""
    outputs.check_target(folder, folder_ok=True)
    folder.mkdir(exist_ok=True)
    written = []
    for name, make in (("match_weights", linker.visualisations.match_weights_chart),
                       ("m_u_parameters", linker.visualisations.m_u_parameters_chart)):
        path = folder / f"{name}.html"
        outputs.write_text(path, make().to_html(inline=True))
        written.append(path)
    return written
