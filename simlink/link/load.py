"""Read encoded files into DuckDB, refuse mixed inputs, collapse identical encodings.

Linkage only makes sense when every agency encoded with the same schema and the same
secret: the manifests carry the schema fingerprint and a key check value, and the files are
refused (with a clear error naming the file) when either differs, when two files claim the
same agency, or when columns of the contract are missing.

Contacts of one person often carry identical identifiers, so the encodings are collapsed:
every event gets an *encoding id* (a hash over all filter words, popcounts and blocking
tokens) and Splink compares each distinct encoding once. The encoding id never leaves the
working database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from simlink.agency.encode import block_column, pop_column, read_manifest, words_columns
from simlink.defaults import DEFAULT_BLOCK_CAP
from simlink.errors import InputError, SchemaError
from simlink.link.block_caps import cap_blocks, scoped_signatures
from simlink.schema import Schema, schema_from_dict

EVENT_COLUMNS = ("agency", "record_id", "service", "contact_date")


def hash_column(field_name: str) -> str:
    """Working column holding a hash of a field's filter (exact level, term frequencies)."""
    return f"fh__{field_name}"


def scope_column(key_name: str) -> str:
    """Working copy of a blocking token that scopes copies of a field (``salt_by``).

    Two records' copies are comparable when these are equal. The block-size cap rewrites
    ``blk__<key>`` in oversized blocks (simlink/link/block_caps.py); the scope must stay the
    agency's token, or two records with the same date of birth in a big block could no
    longer compare their names.
    """
    return f"sc__{key_name}"


def scope_keys(schema: Schema) -> list[str]:
    """Blocking keys that scope some field's copies, in schema order."""
    used = {c.scope for c in schema.copies if c.scope}
    return [b.name for b in schema.blocking if b.name in used]


@dataclass
class LinkInputs:
    """Validated encoded files: their manifests and the one schema they share."""

    paths: list[Path]
    manifests: list[dict]
    schema: Schema
    fingerprint: str
    key_check: str

    @property
    def agencies(self) -> list[str]:
        return [m["agency"] for m in self.manifests]

    def description(self) -> list[dict]:
        """What run_metadata records about the inputs (no data values)."""
        return [{"agency": m["agency"], "file": p.name, "rows": m.get("rows")}
                for p, m in zip(self.paths, self.manifests)]


@dataclass
class LoadStats:
    events: int = 0
    distinct_encodings: int = 0
    events_by_agency: dict[str, int] = field(default_factory=dict)


def encoded_columns(schema: Schema) -> list[str]:
    cols: list[str] = []
    for c in schema.copies:
        cols += words_columns(c.prefix, c.words) + [pop_column(c.prefix)]
    return cols + [block_column(b.name) for b in schema.blocking]


def check_inputs(paths: list[str | Path]) -> LinkInputs:
    """Read and cross-check the manifests; raise a clear error on the first problem."""
    if not paths:
        raise InputError("no encoded files given")
    paths = [Path(p) for p in paths]
    manifests = [read_manifest(p) for p in paths]
    first, first_path = manifests[0], paths[0]
    seen: dict[str, Path] = {}
    for path, manifest in zip(paths, manifests):
        if manifest["schema_fingerprint"] != first["schema_fingerprint"]:
            raise SchemaError(f"encoded with a different schema than {first_path.name} "
                              "(schema fingerprints differ); every agency must use the same schema", path=path)
        if manifest["key_check"] != first["key_check"]:
            raise InputError(f"encoded with a different secret key than {first_path.name} "
                             "(key check values differ); every agency must use the same key", path=path)
        agency = manifest["agency"]
        if agency in seen:
            raise InputError(f"agency '{agency}' is also the agency of {seen[agency].name}; "
                             "give each agency's records in one file", path=path)
        seen[agency] = path
    schema = schema_from_dict(first["schema"], source=str(first_path))
    if schema.fingerprint != first["schema_fingerprint"]:
        raise SchemaError("manifest schema does not match its fingerprint", path=first_path)
    wanted = set(EVENT_COLUMNS) | set(encoded_columns(schema))
    for path in paths:
        missing = wanted - set(pq.read_schema(path).names)
        if missing:
            raise InputError(f"encoded file lacks {len(missing)} expected column(s), e.g. '{sorted(missing)[0]}'",
                             path=path)
    return LinkInputs(paths, manifests, schema, first["schema_fingerprint"], first["key_check"])


def _hash_sql(columns: list[str]) -> str:
    """A 63-bit non-negative BIGINT hash of the columns (DuckDB ``hash`` is 64-bit unsigned)."""
    return f"CAST(hash({', '.join(columns)}) >> 1 AS BIGINT)"


def load(con: duckdb.DuckDBPyConnection, inputs: LinkInputs) -> LoadStats:
    """Create ``link_events`` (one row per event, with its encoding id) and ``link_encodings``
    (one row per distinct encoding: words, popcounts, blocking tokens, filter hashes)."""
    schema = inputs.schema
    cols = encoded_columns(schema)
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in inputs.paths)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE link_raw AS
        SELECT {', '.join(EVENT_COLUMNS)}, {_hash_sql(cols)} AS enc_id, {', '.join(cols)}
        FROM read_parquet([{files}])""")
    con.execute("""CREATE OR REPLACE TEMP TABLE link_events AS
                   SELECT agency, record_id, service, contact_date, enc_id FROM link_raw""")
    field_hashes = ", ".join(
        f"CASE WHEN {pop_column(f.name)} = 0 THEN NULL ELSE {_hash_sql(words_columns(f.name, f.words))} END "
        f"AS {hash_column(f.name)}" for f in schema.fields if f.copies[0].prefix == f.name)
    from simlink.link.settings import equality_column, whole_value_keys

    equalities = "".join(f", {block_column(k.name)} AS {equality_column(k.name)}" for k in whole_value_keys(schema))
    equalities += "".join(f", {block_column(k)} AS {scope_column(k)}" for k in scope_keys(schema))
    if not field_hashes:
        field_hashes = "NULL AS fh__none"
    con.execute(f"""
        CREATE OR REPLACE TABLE link_encodings AS
        SELECT enc_id, {', '.join(cols)}, {field_hashes}{equalities}
        FROM (SELECT DISTINCT ON (enc_id) enc_id, {', '.join(cols)} FROM link_raw)""")
    con.execute("DROP TABLE link_raw")
    stats = LoadStats()
    stats.events = con.execute("SELECT count(*) FROM link_events").fetchall()[0][0]
    stats.distinct_encodings = con.execute("SELECT count(*) FROM link_encodings").fetchall()[0][0]
    stats.events_by_agency = dict(con.execute(
        "SELECT agency, count(*) FROM link_events GROUP BY agency ORDER BY agency").fetchall())
    return stats


def load_encodings(paths: list[str | Path], con: duckdb.DuckDBPyConnection | None = None,
                   block_cap: int | None = DEFAULT_BLOCK_CAP) -> duckdb.DuckDBPyConnection:
    """Encoded files as the table a saved simlink model scores, for use with plain Splink.

    Creates ``link_encodings`` in ``con`` (a new in-memory database if None): one row per
    distinct encoding, with ``enc_id`` (Splink's unique id), per field ``<field>__w<i>``
    (filter as 64-bit words), ``<field>__pop`` (popcount) and ``fh__<field>`` (filter hash),
    and per blocking key ``blk__<name>`` (plus ``eq__<name>`` / ``sc__<name>`` copies of the
    whole-value and scope tokens the comparisons read). The temporary ``link_events`` maps each event
    (agency, record_id, service, contact_date) to its ``enc_id``. The files are checked as
    ``simlink link`` checks them (same schema, same key, one file per agency). The blocking
    tokens are capped as ``simlink link`` caps them (``block_cap``, default its default; None:
    uncapped), with the ``fallback_tokens`` column the model's last blocking rule explodes.
    """
    con = con if con is not None else duckdb.connect(":memory:")
    inputs = check_inputs(list(paths))
    load(con, inputs)
    cap_blocks(con, "link_encodings", block_cap, signatures=scoped_signatures(inputs.schema))
    return con
