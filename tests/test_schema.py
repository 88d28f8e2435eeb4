"""The linkage schema: validation with clear messages, and a fingerprint of what matters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.errors import SchemaError
from simlink.schema import load_schema, schema_from_dict


def _default_doc() -> dict:
    return load_schema().to_dict()


def test_default_schema_is_valid_and_stable() -> None:
    schema = load_schema()
    assert [f.name for f in schema.fields] == ["given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number"]
    assert len(schema.fingerprint) == 64
    assert load_schema().fingerprint == schema.fingerprint
    assert schema_from_dict(schema.to_dict()).fingerprint == schema.fingerprint  # round trip


def test_fingerprint_ignores_local_column_names_but_not_encoding_settings() -> None:
    base = load_schema().fingerprint
    doc = _default_doc()
    doc["fields"][0]["column"] = "forename"
    doc["record"]["record_id"] = "incident_ref"
    assert schema_from_dict(doc).fingerprint == base
    doc["fields"][0]["bits"] = 1024
    assert schema_from_dict(doc).fingerprint != base
    doc = _default_doc()
    doc["fields"][1]["salt_by"] = doc["fields"][1]["salt_by"][:1]
    assert schema_from_dict(doc).fingerprint != base
    doc = _default_doc()
    names = next(b for b in doc["blocking"] if b["name"] == "full_name")
    names["unordered"] = not names["unordered"]
    assert schema_from_dict(doc).fingerprint != base
    doc = _default_doc()
    for key in doc["blocking"]:  # an ordered key written out as `unordered = false` is the same key
        key.setdefault("unordered", False)
    assert schema_from_dict(doc).fingerprint == base


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["fields"][0].update(bits=500), "multiple of 64"),
    (lambda d: d["fields"][0].update(hashes=0), "hashes"),
    (lambda d: d["fields"][0].update(normaliser="soundex"), "normaliser must be one of"),
    (lambda d: d["fields"][0].update(colour="blue"), "unknown key(s) colour"),
    (lambda d: d["fields"][0]["tokens"].update(q=7), "q must be"),
    (lambda d: d["fields"][2]["tokens"].update(phonetic="metaphone"), "phonetic tokens need"),
    (lambda d: d["blocking"][0].update(parts=["date_of_birth:soundex"]), "derivation must be one of"),
    (lambda d: d["blocking"][0].update(parts=["shoe_size:value"]), "names no field"),
    (lambda d: d.update(version=99), "version must be 2"),
    (lambda d: d["blocking"][1].update(unordered=True), "same kind and derivation"),
    (lambda d: d["fields"][0].update(salt_by=["no_such_key"]), "is not a blocking key"),
    (lambda d: d["fields"][0].update(salt_by=["full_name"]), "is made from given_name itself"),
    (lambda d: d["fields"][0].update(segments=7), "minhash field needs segments"),
    (lambda d: d["fields"][0].update(hardening={"balance": True}), "hardening options apply to bloom"),
    (lambda d: d["blocking"][0].update(unordered="yes"), "unordered must be true or false"),
    (lambda d: d["fields"].append(dict(d["fields"][0])), "field names must be unique"),
])
def test_invalid_schemas_are_explained(mutate, message: str) -> None:
    doc = _default_doc()
    mutate(doc)
    with pytest.raises(SchemaError) as info:
        schema_from_dict(doc, "my.toml")
    assert message in str(info.value) and "my.toml" in str(info.value)


def test_schema_cli_show_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["schema", "show", "--format", "json"])
    assert shown.exit_code == 0
    body, fingerprint_line = shown.output.rsplit("\n", 2)[0], shown.output.strip().splitlines()[-1]
    assert json.loads(body)["name"] == "simlink-default-v2"
    assert fingerprint_line == f"fingerprint: {load_schema().fingerprint}"
    checked = runner.invoke(main, ["schema", "check"])
    assert checked.exit_code == 0 and "is valid" in checked.output

    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\nname = "x"\n[[fields]]\nname = "given_name"\ncolumn = "g"\nnormaliser = "person_name"\nbits = 100\nhashes = 5\n')
    result = runner.invoke(main, ["schema", "check", str(bad)])
    assert result.exit_code == 2 and "bad.toml" in result.output and "multiple of 64" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("version = [")
    result = runner.invoke(main, ["schema", "check", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = runner.invoke(main, ["schema", "check", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_custom_schema_maps_other_column_names(tmp_path: Path, key_file: Path) -> None:
    from conftest import AGENCY_ROWS, write_csv

    text = (Path(__file__).resolve().parents[1] / "simlink" / "data" / "default_schema.toml").read_text()
    text = text.replace('column = "given_name"', 'column = "forename"').replace('record_id = "record_id"', 'record_id = "ref"')
    schema_path = tmp_path / "local.toml"
    schema_path.write_text(text)
    header = ["ref", "forename", "family_name", "date_of_birth", "sex", "postcode", "contact_date", "nhs_number"]
    data = write_csv(tmp_path / "local.csv", AGENCY_ROWS, header)
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(main, ["encode", str(data), "--key", str(key_file), "--agency", "ed",
                                       "--schema", str(schema_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    from simlink.agency.encode import read_manifest

    assert read_manifest(out)["schema_fingerprint"] == load_schema().fingerprint


def test_schema_show_prints_toml_that_check_reads_back(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["schema", "show"])
    assert shown.exit_code == 0
    saved = tmp_path / "shown.toml"
    saved.write_text(shown.output, encoding="utf-8")
    fingerprint = load_schema().fingerprint
    assert f"# fingerprint: {fingerprint}" in shown.output
    checked = runner.invoke(main, ["schema", "check", str(saved)])
    assert checked.exit_code == 0 and checked.output.strip().endswith(f"fingerprint {fingerprint}")
    assert load_schema(saved) == load_schema()


def test_edited_schema_round_trips_through_toml(tmp_path: Path) -> None:
    from simlink.schema import schema_toml

    doc = _default_doc()
    doc["name"] = 'agency "copy" — naïve\\tab\x7f'
    doc["record"]["service"] = "svc"
    doc["fields"][0]["column"] = "forename"
    doc["fields"][5]["hardening"] = {"blip_epsilon": 2.5, "xor_fold": True}  # nhs_number: unsalted bloom
    doc["fields"][2]["salt_by"] = ["postcode"]
    original = schema_from_dict(doc, "edited")
    path = tmp_path / "edited.toml"
    path.write_text(schema_toml(original), encoding="utf-8")
    again = load_schema(path)
    assert again == original and again.fingerprint == original.fingerprint
    assert again.fingerprint != load_schema().fingerprint
