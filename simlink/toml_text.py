"""Write plain data (dicts, lists, strings, numbers, booleans) as TOML text.

Python reads TOML (``tomllib``) but does not write it, and no TOML writer is among the
installed dependencies; the documents simlink writes (the schema) are small and regular, so
this emitter covers exactly their shape: top-level keys, tables, arrays of tables, and
inline tables/arrays inside those. Its output is checked by reading it back with
``tomllib`` in the tests.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; DEL is a control character
    # TOML forbids raw but JSON leaves alone.
    return json.dumps(text).replace("\x7f", "\\u007f")


def value(item: Any) -> str:
    """One TOML value (inline form)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isnan(item):
            return "nan"
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {value(v)}" for k, v in item.items()) + " }" if item else "{}"
    raise TypeError(f"TOML cannot hold a {type(item).__name__}")


def _is_table_array(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) > 0 and all(isinstance(v, dict) for v in item)


def _body(table: dict[str, Any]) -> list[str]:
    """``key = value`` lines for everything in ``table`` that is not a table of its own."""
    return [f"{_key(str(k))} = {value(v)}" for k, v in table.items()
            if not isinstance(v, dict) and not _is_table_array(v)]


def dumps(doc: dict[str, Any]) -> str:
    """``doc`` as a TOML document; nested tables below the second level are written inline."""
    lines = _body(doc)
    for name, item in doc.items():  # tables first, then arrays of tables, as people write them
        if isinstance(item, dict):
            lines += ["", f"[{_key(str(name))}]", *(f"{_key(str(k))} = {value(v)}" for k, v in item.items())]
    for name, item in doc.items():
        if _is_table_array(item):
            for entry in item:
                lines += ["", f"[[{_key(str(name))}]]", *(f"{_key(str(k))} = {value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"
