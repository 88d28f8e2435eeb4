"""Hardening options change the filters exactly as documented (docs/threat-model.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from simlink.agency.bloom import FieldEncoder, dice, unpack
from simlink.agency.encode import Encoder, words_columns
from simlink.errors import SchemaError
from importlib import resources

from simlink.schema import Hardening, load_schema, schema_from_dict

# The format-1 hardening options stay available for measurement (audit, benchmarks); the
# format-1 default schema is shipped for that purpose only.
LEGACY = str(resources.files("simlink.data") / "legacy_v1_schema.toml")

SECRET = bytes(range(32))
NAMES = ["smith", "smyth", "jones", "johnson", "williams", "brown", "taylor", "davies", "evans", "thomas",
         "roberts", "walker", "wright", "robinson", "thompson", "white", "hughes", "edwards", "green", "hall"]


def _spec(**changes):
    base = load_schema(LEGACY).field("family_name")
    filter_changes = {k: changes.pop(k) for k in ("bits", "hashes", "hashing") if k in changes}
    return dataclasses.replace(base, hardening=Hardening(**changes), **filter_changes)


def _matrix(spec, values=NAMES, salts=None, secret=SECRET):
    encoder = FieldEncoder(spec, secret, "fingerprint")
    words, pops = encoder.encode(values, salts)
    matrix = unpack(words)
    assert (matrix.sum(axis=1) == pops).all()
    return matrix


def test_balance_gives_constant_weight_and_doubles_length():
    spec = _spec(balance=True)
    matrix = _matrix(spec)
    assert matrix.shape[1] == 2 * spec.bits
    assert set(matrix.sum(axis=1).tolist()) == {spec.bits}
    plain = _matrix(_spec())
    assert len(set(plain.sum(axis=1).tolist())) > 1  # the unbalanced weights did differ


def test_xor_fold_halves_length_and_keeps_order_of_similarity():
    spec = _spec(xor_fold=True)
    folded = _matrix(spec)
    assert folded.shape[1] == spec.bits // 2 == spec.stored_bits
    plain = _matrix(_spec())
    # folding is a function of the plain filter: fold(plain) == folded
    np.testing.assert_array_equal(plain[:, : spec.bits // 2] ^ plain[:, spec.bits // 2:], folded)
    # similar names stay more similar than dissimilar ones
    assert dice(folded[0], folded[1]) > dice(folded[0], folded[4])


@pytest.mark.parametrize("epsilon", [1.0, 3.0])
def test_blip_flips_the_expected_share_deterministically(epsilon):
    values = [f"name{i:04d}" for i in range(400)]
    plain = _matrix(_spec(), values)
    noisy = _matrix(_spec(blip_epsilon=epsilon), values)
    expected = 1 / (1 + np.exp(epsilon))
    observed = (plain ^ noisy).mean()
    assert abs(observed - expected) < 0.01
    np.testing.assert_array_equal(noisy, _matrix(_spec(blip_epsilon=epsilon), values))  # deterministic
    other_key = _matrix(_spec(blip_epsilon=epsilon), values, secret=bytes(32))
    assert (other_key != noisy).any()


def test_permute_moves_bits_but_preserves_dice():
    plain = _matrix(_spec())
    permuted = _matrix(_spec(permute=True))
    assert (plain != permuted).any()
    np.testing.assert_array_equal(plain.sum(axis=1), permuted.sum(axis=1))
    for i, j in [(0, 1), (2, 3), (0, 9)]:
        assert dice(plain[i], plain[j]) == pytest.approx(dice(permuted[i], permuted[j]))


def test_random_and_double_hashing_are_both_selectable():
    random_h = _matrix(_spec(hashing="random"))
    double_h = _matrix(_spec(hashing="double"))
    assert (random_h != double_h).any()
    assert dice(random_h[0], random_h[1]) > 0.5 and dice(double_h[0], double_h[1]) > 0.5


def test_salt_separates_equal_values_with_different_salts():
    spec = _spec(salt_derivation="date_of_birth:year")
    matrix = _matrix(spec, ["smith", "smith", "smith", "smyth"], ["1980", "1980", "1981", "1980"])
    np.testing.assert_array_equal(matrix[0], matrix[1])
    assert dice(matrix[0], matrix[2]) < 0.5  # same name, other salt: unrelated filters
    assert dice(matrix[0], matrix[3]) > 0.6  # similar name, same salt: still similar


def _table(rows):
    cols = ["record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "contact_date"]
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})


def test_encoder_salts_names_with_the_year_of_birth():
    doc = load_schema(LEGACY).to_dict()
    doc["fields"] = [dict(f) for f in doc["fields"]]
    for f in doc["fields"]:
        if f["name"] == "family_name":
            f["hardening"] = {"salt_derivation": "date_of_birth:year"}
        if f["name"] == "given_name":
            f["hardening"] = {}
    schema = schema_from_dict(doc)
    rows = [("a", "ann", "smith", "1980-02-03", "F", "LS1 1AA", "2025-01-01"),
            ("b", "ann", "smith", "1980-07-09", "F", "LS1 1AA", "2025-01-01"),
            ("c", "ann", "smith", "1981-02-03", "F", "LS1 1AA", "2025-01-01"),
            ("d", "ann", "smith", None, "F", "LS1 1AA", "2025-01-01")]
    out = Encoder(schema, SECRET, "police").encode_table(_table(rows))
    spec = schema.field("family_name")
    words = np.stack([out.column(c).to_numpy() for c in words_columns("family_name", spec.words)], axis=1)
    given = np.stack([out.column(c).to_numpy() for c in words_columns("given_name", schema.field("given_name").words)], axis=1)
    assert (words[0] == words[1]).all()  # same year
    assert (words[0] != words[2]).any() and (words[0] != words[3]).any()  # other year / no year
    assert (given[0] == given[2]).all()  # unsalted field unchanged
    assert out.column("family_name__pop").to_numpy()[3] > 0  # missing salt still encodes the name


def test_salt_derivation_is_validated():
    doc = load_schema(LEGACY).to_dict()
    doc["fields"] = [dict(f) for f in doc["fields"]]
    doc["fields"][1]["hardening"] = {"salt_derivation": "no_such_field:year"}
    with pytest.raises(SchemaError):
        schema_from_dict(doc)
