"""The public API at the package top: every name resolves, defaults are the shipped ones."""

from __future__ import annotations

import inspect
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import simlink
from simlink.agency import encode as agency_encode


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in simlink.__all__:
        assert getattr(simlink, name) is not None, name
    assert set(simlink.__all__) <= set(dir(simlink))
    assert simlink.link_files is __import__("simlink.link", fromlist=["link_files"]).link_files
    assert simlink.release is __import__("simlink.counts", fromlist=["release"]).release
    with pytest.raises(AttributeError, match="no attribute 'encode'"):
        simlink.encode  # noqa: B018 - the old module path is not a public name


def test_package_ships_its_type_marker() -> None:
    assert (Path(simlink.__file__).parent / "py.typed").exists()
    pyproject = (Path(simlink.__file__).parent.parent / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject


def test_encode_wrapper_takes_every_option_of_the_real_encoder() -> None:
    real = set(inspect.signature(agency_encode.encode_file).parameters)
    wrapper = inspect.signature(simlink.encode_file).parameters
    assert real - {"secret"} <= set(wrapper) and {"key_file", "secret"} <= set(wrapper)
    assert wrapper["schema"].default is None


def test_encode_with_defaults_equals_the_explicit_call(agency_csv: Path, key_file: Path, tmp_path: Path) -> None:
    easy = simlink.encode_file(agency_csv, tmp_path / "easy.parquet", agency="police", key_file=key_file)
    explicit = agency_encode.encode_file(agency_csv, tmp_path / "explicit.parquet", agency="police",
                                         secret=simlink.read_key_file(key_file), schema=simlink.load_schema(None))
    assert easy.rows == explicit.rows == 10
    a, b = pq.read_table(tmp_path / "easy.parquet"), pq.read_table(tmp_path / "explicit.parquet")
    assert a.equals(b)
    assert simlink.read_manifest(tmp_path / "easy.parquet")["schema_fingerprint"] == simlink.load_schema().fingerprint


def test_encode_needs_the_secret_exactly_once(agency_csv: Path, key_file: Path, tmp_path: Path) -> None:
    for kwargs in ({}, {"key_file": key_file, "secret": simlink.read_key_file(key_file)}):
        with pytest.raises(simlink.SimlinkError, match="either key_file or secret"):
            simlink.encode_file(agency_csv, tmp_path / "x.parquet", agency="police", **kwargs)
    assert not (tmp_path / "x.parquet").exists()


def test_api_reference_is_generated_from_the_current_docstrings() -> None:
    import importlib.util

    root = Path(simlink.__file__).parent.parent
    spec = importlib.util.spec_from_file_location("make_api", root / "docs" / "make_api.py")
    make_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_api)
    assert (root / "docs" / "api.md").read_text(encoding="utf-8") == make_api.render(), \
        "docs/api.md is stale: run python docs/make_api.py"
