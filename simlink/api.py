"""The few calls that need more than a re-export to be pleasant from Python.

Everything else in the public API (``simlink.link_files``, ``simlink.release`` ...) is the
function itself, re-exported lazily by ``simlink/__init__.py``. Functions here wrap the
real ones *by name* and add only defaults, so they follow those functions as they change.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from simlink.errors import SimlinkError

if TYPE_CHECKING:
    from simlink.agency.encode import EncodeSummary
    from simlink.schema import Schema
    from simlink.synth import SynthSummary


def _schema(schema: Schema | str | Path | None) -> Schema:
    from simlink.schema import Schema, load_schema

    return schema if isinstance(schema, Schema) else load_schema(schema)


def encode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    agency: str,
    key_file: str | Path | None = None,
    secret: bytes | None = None,
    schema: Schema | str | Path | None = None,
    overwrite: bool = False,
    strict: bool = True,
    chunk_rows: int = 200_000,
    progress: Callable[[int], None] | None = None,
) -> EncodeSummary:
    """Encode an agency's CSV/Parquet file into a Parquet file that holds no raw identifier.

    Give the shared secret as ``key_file`` (made by :func:`simlink.generate_key_file`) or as
    ``secret`` bytes (:func:`simlink.read_key_file`). ``schema``: a :class:`simlink.Schema`,
    a TOML path, or None for the schema shipped with simlink. ``strict=False`` encodes an
    unreadable date or sex code as missing instead of refusing the file. Atomic: nothing is
    written unless the whole file encodes.
    """
    from simlink.agency import encode as _encode
    from simlink.agency.keys import read_key_file

    if (key_file is None) == (secret is None):
        raise SimlinkError("give the shared secret once: either key_file or secret")
    key = secret if secret is not None else read_key_file(key_file)  # type: ignore[arg-type]
    return _encode.encode_file(input_path, output_path, secret=key, agency=agency, schema=_schema(schema),
                               overwrite=overwrite, strict=strict, chunk_rows=chunk_rows, progress=progress)


def synthesise(out_dir: str | Path, *, people: int, seed: int = 0, errors: str = "medium",
               overwrite: bool = False) -> SynthSummary:
    """Write synthetic agency files and their answer key (``truth.csv``) into ``out_dir``.

    The same as ``simlink synth``; for the other settings (period, contact model, custom
    error rates) build a :class:`simlink.SynthConfig` and call :func:`simlink.write_synth`.
    """
    from simlink.synth import SynthConfig, write_synth

    return write_synth(SynthConfig(people=people, seed=seed, errors=errors), out_dir, overwrite=overwrite)
