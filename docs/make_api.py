"""Write docs/api.md from the public names of ``simlink`` and their docstrings.

Run ``python docs/make_api.py`` after changing a public function; the tests fail while
docs/api.md differs from what this prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simlink  # noqa: E402

SECTIONS = {
    "Keys and schema": ["generate_key_file", "read_key_file", "load_schema", "schema_toml", "Schema"],
    "Agency side (with the secret)": ["encode_file", "EncodeSummary", "read_manifest"],
    "Linkage unit (no secret)": ["link_files", "LinkResult", "load_encodings", "read_model_file",
                                 "DiceAtThresholds", "DEFAULT_THRESHOLD"],
    "Counts (disclosure control by default)": ["release", "write_report", "Release", "DisclosurePolicy", "protect"],
    "Review: synthetic truth, evaluation, audit, demo": ["synthesise", "SynthConfig", "write_synth", "read_truth",
                                                         "evaluate_files", "LinkageQuality", "audit_file",
                                                         "AuditReport", "run_demo"],
    "Errors (each prints as one line naming file, row and column, never a value)":
        ["SimlinkError", "InputError", "KeyFileError", "OutputExistsError", "SchemaError"],
}

INTRO = '''# Python API

Everything below is importable from the package top (`import simlink`); names load on first
use, so `import simlink` does not import pandas, DuckDB or Splink. The package ships
`py.typed`. This page is generated from the docstrings by `docs/make_api.py`.

```python
import simlink

simlink.synthesise("synth", people=500, seed=1)                      # agencies + truth.csv
simlink.generate_key_file("shared.key")                              # once, shared by agencies
for agency in ("police", "ambulance", "ed", "mental_health"):        # at each agency
    simlink.encode_file(f"synth/{agency}.csv", f"{agency}.parquet", agency=agency, key_file="shared.key")
result = simlink.link_files([f"{a}.parquet" for a in ("police", "ambulance", "ed", "mental_health")],
                            "linkage.duckdb")                        # at the linkage unit
counts = simlink.release("linkage.duckdb")                           # protected counts
simlink.write_report(counts, "report")
print(simlink.evaluate_files("linkage.duckdb", "synth/truth.csv").pair_f1)
```

Runnable versions are in `examples/`. Other modules (`simlink.agency.*`, `simlink.link.*`,
`simlink.counts.*` ...) are internals and may change between versions; the names here and
the file formats (docs/encoding.md, docs/linkage.md) are the contract.
'''


def _annotation(value) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature(obj) -> str:
    """The signature as written in the source (annotations are strings there), private
    parameters left out."""
    sig = inspect.signature(obj)
    parts, star_done = [], False
    for name, p in sig.parameters.items():
        if name.startswith("_"):
            continue
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = name + (f": {_annotation(p.annotation)}" if p.annotation is not p.empty else "")
        if p.default is not p.empty:
            text += f" = {getattr(p.default, '__name__', None) or repr(p.default)}" if callable(p.default) else f" = {p.default!r}"
        parts.append(text)
    ret = f" -> {_annotation(sig.return_annotation)}" if sig.return_annotation is not sig.empty else ""
    return f"({', '.join(parts)}){ret}"


def _entry(name: str) -> str:
    obj = getattr(simlink, name)
    doc = inspect.getdoc(obj) or ""
    if isinstance(obj, type):
        if dataclasses.is_dataclass(obj):
            fields = ", ".join(f"{f.name}: {f.type}" for f in dataclasses.fields(obj) if not f.name.startswith("_"))
            head = f"### class `simlink.{name}`\n\nFields: `{fields}`."
            if doc.startswith(f"{name}("):  # dataclass default docstring repeats the fields
                doc = ""
        else:
            head = f"### class `simlink.{name}`"
    elif callable(obj):
        head = f"### `simlink.{name}{_signature(obj)}`"
    else:
        head = f"### `simlink.{name} = {obj!r}`"
    return head + ("\n\n" + doc if doc else "") + "\n"


def render() -> str:
    listed = [n for names in SECTIONS.values() for n in names]
    missing = sorted(set(simlink.__all__) - set(listed) - {"__version__"})
    if missing:
        raise SystemExit(f"public names without a section in docs/make_api.py: {', '.join(missing)}")
    parts = [INTRO]
    for title, names in SECTIONS.items():
        parts.append(f"## {title}\n")
        parts += [_entry(n) for n in names]
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "api.md").write_text(render(), encoding="utf-8")
    print(f"wrote {ROOT / 'docs' / 'api.md'}")
