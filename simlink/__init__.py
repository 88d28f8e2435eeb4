"""simlink: privacy-preserving record linkage of crisis contacts across agencies.

Pipeline: schema -> normalise -> encode (at each agency, with a shared secret) ->
link (at a linkage unit without the secret) -> counts (with disclosure control).

The public API is importable from here (reference: docs/api.md)::

    import simlink
    simlink.generate_key_file("shared.key")
    simlink.encode_file("police.csv", "police.parquet", agency="police", key_file="shared.key")
    result = simlink.link_files(["police.parquet", "ed.parquet"], "linkage.duckdb")
    counts = simlink.release("linkage.duckdb")          # disclosure control by default
    simlink.write_report(counts, "report/")

Names are loaded on first use (PEP 562), so ``import simlink`` and the ``simlink`` command
start without pandas, DuckDB or Splink.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from simlink.errors import InputError, KeyFileError, OutputExistsError, SchemaError, SimlinkError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # keys and schema
    "generate_key_file": "simlink.agency.keys",
    "read_key_file": "simlink.agency.keys",
    "load_schema": "simlink.schema",
    "schema_toml": "simlink.schema",
    "Schema": "simlink.schema",
    # agency side
    "encode_file": "simlink.api",
    "EncodeSummary": "simlink.agency.encode",
    "read_manifest": "simlink.agency.encode",
    # linkage unit
    "link_files": "simlink.link",
    "LinkResult": "simlink.link",
    "load_encodings": "simlink.link",
    "read_model_file": "simlink.link",
    "DiceAtThresholds": "simlink.link",
    "DEFAULT_THRESHOLD": "simlink.defaults",
    # counts
    "release": "simlink.counts",
    "write_report": "simlink.counts",
    "Release": "simlink.counts",
    "DisclosurePolicy": "simlink.counts",
    "protect": "simlink.counts",
    # review: synthetic truth, evaluation, audit, demo
    "synthesise": "simlink.api",
    "SynthConfig": "simlink.synth",
    "write_synth": "simlink.synth",
    "read_truth": "simlink.synth",
    "evaluate_files": "simlink.evaluate",
    "LinkageQuality": "simlink.evaluate",
    "audit_file": "simlink.audit",
    "AuditReport": "simlink.audit",
    "run_demo": "simlink.demo",
}

__all__ = ["__version__", "SimlinkError", "InputError", "KeyFileError", "OutputExistsError", "SchemaError",
           *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simlink' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # what type checkers and editors see; never run
    from simlink.agency.encode import EncodeSummary, read_manifest
    from simlink.agency.keys import generate_key_file, read_key_file
    from simlink.api import encode_file, synthesise
    from simlink.audit import AuditReport, audit_file
    from simlink.counts import DisclosurePolicy, Release, protect, release, write_report
    from simlink.defaults import DEFAULT_THRESHOLD
    from simlink.demo import run_demo
    from simlink.evaluate import LinkageQuality, evaluate_files
    from simlink.link import DiceAtThresholds, LinkResult, link_files, load_encodings, read_model_file
    from simlink.schema import Schema, load_schema, schema_toml
    from simlink.synth import SynthConfig, read_truth, write_synth
