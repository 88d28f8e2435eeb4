"""The encoder's fast paths give exactly what the plain per-value definitions give.

Speed work (Arrow-buffer tokenising, vectorised blocking derivations, the (salt, token) word
cache) must not change one output bit: files encoded by different simlink versions are linked
together. The golden digests below were computed by the encoder before that work (main at
commit 9fda6fb); benchmarks/encode_identical.py makes the same check on the values of whole files
and more data.
"""

from __future__ import annotations

import copy
from pathlib import Path
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from simlink.agency.blocking import DERIVE, derive_array
from simlink.agency.encode import Encoder
from simlink.agency.normalise import NORMALISERS
from simlink.schema import DERIVATIONS, TokenSpec, load_schema, schema_from_dict
from simlink.agency.tokens import date_part_tokens, positional_tokens, qgram_tokens

NAMES = ["Mohammed", "Siobhan", "O'Sullivan", "Mary-Jane", "Smith Jones", "Łukasz", "Ørsted", "Σοφία",
         "李小龍", "Ng", "O", "Mc Donald", "Dr. Ruairidh", "Zoë", "Wiśniewski", "Nguyễn Văn", "Мария",
         "", "Mr", "Al 2", "ß", "x" * 80, "Anna Maria " * 8, "D'Arcy", "Kowalczyk", "Adeyemi", "Patel"]
DATES = ["14/02/1986", "1991-07-30", "3 Mar 1967", "01-12-79", "19990405", "29/02/2001", "", "31/12/1940",
         "2000-01-01", "05/11/2005", "7 July 1955"]
POSTCODES = ["B11 1AA", "ls6 2qt", "SW1A 2AA", "EH1 1YZ", "M14 5TP", "ZZ99 3VZ", "", "cf10 3at", "GIR 0AA",
             "BT9 5AB", "nonsense"]
NHS = ["9434765919", "", "401 023 2137", "123", "4010232137"]
SEX = ["M", "F", "female", "1", "2", "", "x", "male"]


def _golden_table(rows: int = 1500, chunks: int = 2, seed: int = 20) -> list[pa.Table]:
    """Deterministic agency chunks mixing plain, non-ASCII, over-long and missing values."""
    rng = np.random.default_rng(seed)
    tables = []

    def pick(options: list[str]) -> list[str]:
        return [options[i] for i in rng.integers(0, len(options), rows)]

    for c in range(chunks):
        tables.append(pa.table({
            "record_id": [f"R{c}-{i}" for i in range(rows)],
            "contact_date": ["2025-01-0" + str(1 + i % 9) for i in range(rows)],
            "given_name": pick(NAMES), "family_name": pick(NAMES), "date_of_birth": pick(DATES),
            "sex": pick(SEX), "postcode": pick(POSTCODES), "nhs_number": pick(NHS),
        }))
    return tables


def _schemas() -> dict:
    default = load_schema()
    # The variants start from the 0.2 default (with its four partial-name blocking keys), so
    # their goldens have pinned the same encoder since then.
    landed = load_schema(Path(__file__).resolve().parents[1] / "benchmarks" / "candidates" / "v2_partial_name_keys.toml")
    plain = landed.to_dict()
    for f in plain["fields"]:  # every field one unsalted copy (MinHash names without a scope)
        f["hardening"] = {}
        f["salt_by"] = []
    exotic = copy.deepcopy(landed.to_dict())
    for f in exotic["fields"]:
        if f["name"] in ("given_name", "family_name", "postcode"):  # format-1 style: unsalted bloom
            f.update(encoding="bloom", segments=0, salt_by=[], hashes=f["hashes"] if f["name"] == "postcode" else 10)
        if f["name"] == "given_name":
            f["hardening"] = {"blip_epsilon": 3.0, "xor_fold": True, "permute": True,
                              "salt_derivation": "date_of_birth:year"}
        elif f["name"] == "family_name":
            f["hardening"] = {"salt_derivation": "date_of_birth:year_month", "permute": True}
            f["hashing"] = "double"
        elif f["name"] == "postcode":
            f["hardening"] = {"balance": True}
            f["tokens"] = {"kind": "qgram", "q": 3, "padding": False}
    extra = [("given_name", d) for d in DERIVATIONS["person_name"]] + [("postcode", d) for d in DERIVATIONS["uk_postcode"]]
    exotic["blocking"] += [{"name": f"x_{f}_{d}", "parts": [f"{f}:{d}"]} for f, d in extra]
    exotic["blocking"].append({"name": "x_unordered", "parts": ["given_name:metaphone", "family_name:metaphone"],
                               "unordered": True})
    return {"default": default, "unhardened": schema_from_dict(plain), "exotic": schema_from_dict(exotic)}


def _digest(tables: list[pa.Table]) -> str:
    """SHA-256 of every column's values and nulls, in order."""
    h = hashlib.sha256()
    for table in tables:
        for name, column in zip(table.column_names, table.columns):
            h.update(name.encode())
            h.update(np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=np.uint8).tobytes())
            if pa.types.is_string(column.type):
                h.update("\x00".join(pc.fill_null(column, "").to_pylist()).encode())
            elif pa.types.is_date(column.type):
                h.update(np.asarray(column.cast(pa.int32()).to_numpy(zero_copy_only=False)).tobytes())
            else:
                h.update(pc.fill_null(column, 0).to_numpy().tobytes())
    return h.hexdigest()


# First computed with the encoder of main at 9fda6fb (before the speed work), which the fast
# paths matched bit for bit. Recomputed once when a value's filter was made independent of the
# rest of its batch (bloom.pair_words: the last value with tokens of a group lost its final
# token when only token-less values followed it); test_a_value_encodes_the_same_alone_as_in_a_batch
# checks that property against single-row encodings. A change of the default schema changes
# "default" and "exotic": recompute them with the encoder the new schema was written for.
# Recomputed for format 2 (scoped MinHash names, one-HMAC tokens) with the encoder that
# introduced it; test_a_value_encodes_the_same_alone_as_in_a_batch and the cache tests check
# the new fast paths against the same values.
GOLDEN = {
    # default: recomputed when the four partial-name blocking keys left the default schema (the
    # 0.2 default, benchmarks/candidates/v2_partial_name_keys.toml, still gives 9df5ba9f...).
    "default": "0a606baee4b093975b11583cbce9b28c6bcd19cf9e56e0795a5ab87735c69f87",
    "unhardened": "584bcc9247ba7a4cf31266d9d0efce14a742f2a9c0237ccfe70dbab288d48f93",
    "exotic": "a78f30b6d03dfaa1e4b6146da6e0427513b81b248225e71af472451741baf133",
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_encoding_is_identical_to_the_reference_encoder(name: str) -> None:
    schema = _schemas()[name]
    encoder = Encoder(schema, bytes(range(32)), "police", strict=False)
    assert _digest([encoder.encode_table(t) for t in _golden_table()]) == GOLDEN[name]


@pytest.mark.parametrize("name", ["default", "exotic"])
def test_a_value_encodes_the_same_alone_as_in_a_batch(name: str) -> None:
    """Filters, popcounts and tokens of a record depend on the record only, never on its chunk."""
    schema = _schemas()[name]
    table = _golden_table(rows=120, chunks=1)[0]
    # The case that once broke it: a name with a phonetic token, then only names without one.
    edge = _golden_table(rows=2, chunks=1)[0].set_column(2, "given_name", pa.array(["Mary Jane", "Σοφία"]))
    alone = Encoder(schema, bytes(range(32)), "police", strict=False)
    for chunk in (edge, table):
        batch = Encoder(schema, bytes(range(32)), "police", strict=False).encode_table(chunk)
        for row in range(chunk.num_rows):
            single = alone.encode_table(chunk.slice(row, 1))
            assert single.to_pylist() == batch.slice(row, 1).to_pylist(), f"row {row}"


def test_vectorised_derivations_equal_the_per_value_definitions() -> None:
    raw = {"person_name": NAMES + ["anne marie", "o brien"], "date": DATES, "uk_postcode": POSTCODES,
           "sex": SEX, "nhs_number": NHS, "text": NAMES, "identifier": NHS + ["AB-12/3", " x 9 "]}
    checked = 0
    for normaliser, derivations in DERIVATIONS.items():
        values = NORMALISERS[normaliser](pa.array(raw[normaliser])).values
        for derivation in derivations:
            got = derive_array(normaliser, derivation, values, {}).to_pylist()
            expected = [None if v is None else DERIVE[(normaliser, derivation)](v) for v in values.to_pylist()]
            assert [g or None for g in got] == [e or None for e in expected], (normaliser, derivation)
            checked += 1
    assert checked == sum(len(d) for d in DERIVATIONS.values())


def _token_set(tokens) -> set:
    return set(zip(tokens.value_index.tolist(), tokens.tag.tolist(), tokens.code.tolist()))


@pytest.mark.parametrize("q,padding", [(1, True), (2, True), (2, False), (3, True), (3, False)])
def test_arrow_qgrams_equal_list_qgrams(q: int, padding: bool) -> None:
    values = ["anna", "o", "", "mary jane", "x" * 80, "ab cd ef", "zz"]
    from_arrow = qgram_tokens(pa.array(values), q, padding)
    from_list = qgram_tokens(values, q, padding)
    assert _token_set(from_arrow) == _token_set(from_list)
    assert len(from_arrow.code) > 0


def test_arrow_positional_and_date_tokens_equal_list_tokens() -> None:
    numbers = ["9434765919", "4010232137", "1", ""]
    assert _token_set(positional_tokens(pa.array(numbers))) == _token_set(positional_tokens(numbers))
    dates = ["1986-02-14", "2001-12-31", "1940-01-01"]
    assert _token_set(date_part_tokens(pa.array(dates))) == _token_set(date_part_tokens(dates))


def test_non_ascii_values_take_the_list_path_with_the_same_tokens() -> None:
    values = ["łukasz", "σοφια", "anna"]
    assert _token_set(qgram_tokens(pa.array(values), 2, True)) == _token_set(qgram_tokens(values, 2, True))
    assert TokenSpec().kind == "qgram"


def test_cache_limits_and_hashed_lookups_do_not_change_the_output(monkeypatch) -> None:
    """Tiny caches (emptied again and again) and the hashed instead of dense (salt, token)
    lookup give the same bytes: caching is only ever a shortcut."""
    import simlink.agency.blocking
    import simlink.agency.bloom

    monkeypatch.setattr(simlink.agency.bloom, "_PAIR_CACHE_LIMIT", 50)
    monkeypatch.setattr(simlink.agency.bloom, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(simlink.agency.blocking, "_CACHE_LIMIT", 5)
    encoder = Encoder(_schemas()["default"], bytes(range(32)), "police", strict=False)
    assert _digest([encoder.encode_table(t) for t in _golden_table()]) == GOLDEN["default"]


def test_normalising_rows_directly_gives_the_same_output(monkeypatch) -> None:
    """After a first chunk, every field is normalised per row instead of per distinct value."""
    import simlink.agency.encode

    monkeypatch.setattr(simlink.agency.encode, "_ROW_WISE_RATIO", 0.0)
    encoder = Encoder(_schemas()["default"], bytes(range(32)), "police", strict=False)
    assert _digest([encoder.encode_table(t) for t in _golden_table()]) == GOLDEN["default"]
    assert encoder._row_wise == {f.name for f in encoder.schema.fields}


def test_row_wise_normalising_names_the_same_bad_row(monkeypatch) -> None:
    import simlink.agency.encode
    from simlink.errors import InputError

    monkeypatch.setattr(simlink.agency.encode, "_ROW_WISE_RATIO", 0.0)
    first, second = _golden_table()
    dates = ["1990-01-02"] * second.num_rows
    dates[10] = "31/31/1990"
    second = second.set_column(second.column_names.index("date_of_birth"), "date_of_birth", pa.array(dates))
    encoder = Encoder(_schemas()["default"], bytes(range(32)), "police", strict=True)
    encoder.encode_table(first.set_column(first.column_names.index("date_of_birth"), "date_of_birth",
                                          pa.array(["2000-01-01"] * first.num_rows)))
    assert "date_of_birth" in encoder._row_wise
    with pytest.raises(InputError) as error:
        encoder.encode_table(second, first_row=1501)
    assert "row 1511" in str(error.value) and "1990" not in str(error.value)


@pytest.mark.parametrize("normaliser,values", [
    ("uk_postcode", ["B11 1AA", "b111aa", "SW1A 2AA", "", "ZZ99 3VZ", "sw1a\t1aa", "M1-1AE", "GIR 0AA", "ß1 1AA",
                     "  ", "EC1A1BB", "nonsense"]),
    ("nhs_number", ["9434765919", "", "943 476 5919", "943-476-5919", "123", "12345678901", "٣٤٣٤٧٦٥٩١٩", "9434765919 "]),
    ("date", ["14/02/1986", "1991-07-30", "3 Mar 1967", "01-12-79", "19990405", "", "31/31/1990", "1 jan 80"]),
])
def test_normaliser_shortcuts_agree_with_the_general_path(normaliser: str, values: list[str]) -> None:
    """Each value alone (clean batches take the shortcuts) gives what the mixed batch gives."""
    normalise = NORMALISERS[normaliser]
    batch = normalise(pa.array(values))
    for i, value in enumerate(values):
        alone = normalise(pa.array([value]))
        assert alone.values.to_pylist() == [batch.values[i].as_py()], value
        assert bool(alone.invalid[0]) == bool(batch.invalid[i]), value


def _plain_copy_words(encoder, values: list[str], pair_value: np.ndarray, pair_salt: np.ndarray) -> np.ndarray:
    """The scoped copy's definition, one pair at a time: AES bytes of each (salt, token), then
    per segment the minimum byte (MinHash, one-hot at its low bits) or k 16-bit draws mod bits
    (Bloom, OR-ed)."""
    from simlink.agency.filters import _value_tokens
    from simlink.agency.keyed import TokenIds

    spec = encoder.spec
    offsets, token = _value_tokens(pa.array(values), spec, TokenIds())
    out = np.zeros((len(pair_value), spec.bits), dtype=bool)
    for i, (value, salt) in enumerate(zip(pair_value.tolist(), pair_salt.tolist())):
        tokens = token[offsets[value]:offsets[value + 1]]
        if len(tokens) == 0:
            continue
        salts = np.full(len(tokens), salt, dtype=np.uint64)
        if spec.encoding == "minhash":
            width = spec.bits // spec.segments
            raw = encoder._prf(salts, tokens, blocks=(spec.segments + 15) // 16)[:, :spec.segments]
            low = raw.min(axis=0) & (width - 1)
            out[i, np.arange(spec.segments) * width + low] = True
        else:
            raw = encoder._prf(salts, tokens, blocks=(spec.hashes + 7) // 8).view(np.uint16)[:, :spec.hashes]
            out[i, raw.astype(np.int64).reshape(-1) % spec.bits] = True
    return np.packbits(out, axis=1, bitorder="little").view("<i8").reshape(len(pair_value), -1)


@pytest.mark.parametrize("shape", [
    {"encoding": "minhash", "bits": 512, "segments": 64},   # the default: a byte per segment
    {"encoding": "minhash", "bits": 512, "segments": 128},  # 4-bit segments, two per byte
    {"encoding": "minhash", "bits": 1024, "segments": 32},  # 32-bit segments, 2 AES blocks
    {"encoding": "minhash", "bits": 128, "segments": 64},   # 2-bit segments
    {"encoding": "bloom", "bits": 256, "hashes": 5},
    {"encoding": "bloom", "bits": 320, "hashes": 9},        # not a power of two; 2 AES blocks
])
def test_scoped_copies_equal_their_per_pair_definition(shape: dict, monkeypatch) -> None:
    """The slot-ordered folds (pairs sorted by token count, j-th tokens hashed together, pairs
    in steps) give each pair exactly its own definition, including pairs without tokens."""
    import simlink.agency.filters
    from simlink.agency.filters import CopyEncoder

    monkeypatch.setattr(simlink.agency.filters, "_CHUNK_PAIRS", 7)  # many steps, ragged ends
    doc = load_schema().to_dict()
    field = next(f for f in doc["fields"] if f["name"] == "given_name")
    field.update({"segments": 0, "hashes": 5, **shape})
    schema = schema_from_dict(doc)
    spec = schema.field("given_name")
    encoder = CopyEncoder(spec, "dob", bytes(range(32)), schema.fingerprint)
    values = [v for v in dict.fromkeys(NORMALISERS["person_name"](pa.array(NAMES)).values.to_pylist()) if v is not None]
    rng = np.random.default_rng(4)
    pair_value = rng.integers(0, len(values), 40)
    pair_salt = rng.integers(0, 2**63, 40).astype(np.uint64)
    pair_salt[::5] = pair_salt[0]  # repeated salts
    words, pops = encoder.encode_pairs(pa.array(values), pair_value, pair_salt)
    expected = _plain_copy_words(encoder, values, pair_value, pair_salt)
    assert (words == expected).all()
    assert (pops == np.bitwise_count(expected.view(np.uint64)).sum(axis=1)).all()
    assert (pops == 0).any() == any(v == "" for v in np.array(values, dtype=object)[pair_value])


def test_token_ids_equal_the_per_token_digest_across_calls() -> None:
    """The id cache (hash index for numeric keys, per-text hashing for strings) is a shortcut
    for ``token_id`` of each token, whatever was seen before and whatever the tags."""
    from simlink.agency.keyed import TokenIds, token_id
    from simlink.agency.tokens import Tokens

    ids = TokenIds()
    numeric = [Tokens(np.arange(4), np.array([1, 1, 10, 11]), np.array([5, 2**41 + 7, 1986, 3])),
               Tokens(np.arange(3), np.array([1, 12, 1]), np.array([5, 3, 99]))]  # partly seen before
    for tokens in numeric:
        expected = [token_id(int(t), int(c)) for t, c in zip(tokens.tag, tokens.code)]
        assert ids(tokens).tolist() == expected
    texts = Tokens(np.arange(4), np.array([4, 4, 3, 4]), np.array([0, 1, 2, 0]), ("AB", "CD", "AB"))
    assert ids(texts).tolist() == [token_id(4, "AB"), token_id(4, "CD"), token_id(3, "AB"), token_id(4, "AB")]
