"""Issue 10 pieces at the linkage unit: the decision rule, SQL clustering, block-size caps."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from simlink.link.block_caps import cap_blocks, largest_block
from simlink.link.clusters import (
    cluster_pairs,
    connected_components,
    probability_decision,
    weight_decision,
)


def _partition(labels: dict[int, int]) -> set[frozenset]:
    groups: dict[int, set] = {}
    for node, label in labels.items():
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def test_sql_components_equal_scipy_on_random_graph_with_a_long_chain():
    rng = np.random.default_rng(3)
    n = 3000
    left, right = rng.integers(0, n, 2200), rng.integers(0, n, 2200)
    chain = np.arange(5000, 5300)  # a 300-node path: needs pointer jumping to settle in few passes
    left = np.concatenate([left, chain[:-1]])
    right = np.concatenate([right, chain[1:]])
    nodes = np.unique(np.concatenate([np.arange(n), chain, [9999]]))  # 9999: isolated
    con = duckdb.connect()
    edges = pd.DataFrame({"enc_id_l": left, "enc_id_r": right}).query("enc_id_l != enc_id_r")  # noqa: F841
    node_frame = pd.DataFrame({"enc_id": nodes})  # noqa: F841
    con.execute("CREATE TABLE e AS SELECT * FROM edges")
    con.execute("CREATE TABLE n AS SELECT * FROM node_frame")
    passes = connected_components(con, "e", "n", "out")
    got = dict(con.execute("SELECT enc_id, cluster_id FROM out").fetchall())
    index = {v: i for i, v in enumerate(nodes)}
    a = [index[v] for v in edges.enc_id_l]
    b = [index[v] for v in edges.enc_id_r]
    _, labels = scipy_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes))), directed=False)
    expected = {int(v): int(labels[i]) for i, v in enumerate(nodes)}
    assert set(got) == set(expected)
    assert _partition(got) == _partition(expected)
    assert all(got[v] == min(g) for g in _partition(got) for v in g)  # the least id names the person
    assert passes <= 40  # 300-node chain: label propagation alone needs ~300 (measured 19)


def test_cluster_pairs_links_only_pairs_at_or_above_the_cut():
    con = duckdb.connect()
    con.execute("CREATE TABLE enc AS SELECT * FROM range(1, 7) t(enc_id)")
    con.execute("""CREATE TABLE s AS SELECT * FROM (VALUES (1, 2, 5.0), (2, 3, 1.0), (4, 5, 0.99), (5, 6, 7.0))
                   t(enc_id_l, enc_id_r, match_weight)""")
    decision = probability_decision(0.001, 1 / (1 + 2 ** -1.0))  # match weight 1.0 exactly
    assert decision.match_weight == pytest.approx(1.0)
    linked = cluster_pairs(con, "s", decision, "out", nodes="enc")
    assert linked == 3
    got = dict(con.execute("SELECT enc_id, cluster_id FROM out").fetchall())
    assert _partition(got) == {frozenset({1, 2, 3}), frozenset({4}), frozenset({5, 6})}


def test_weight_cut_tightens_with_candidate_pairs_per_encoding():
    prior = 1e-5
    small = weight_decision(prior, candidate_pairs=50_000, encodings=10_000, margin=4)
    big = weight_decision(prior, candidate_pairs=400_000, encodings=10_000, margin=4)
    assert small.match_weight == pytest.approx(math.log2(5) + 4)
    assert big.match_weight - small.match_weight == pytest.approx(3.0)  # 8x the pairs: 3 bits more
    assert big.match_probability > small.match_probability
    # expected false links among all candidates, sum of (1 - p) at the cut, stay below N / 2^margin
    assert 400_000 * (1 - big.match_probability) <= 10_000 / 2 ** 4
    assert small.evidence_bits == pytest.approx(small.match_weight - math.log2(prior / (1 - prior)))
    fixed = probability_decision(prior, 0.95)
    assert fixed.match_probability == pytest.approx(0.95)
    assert fixed.evidence_bits == pytest.approx(math.log2(19) - math.log2(prior / (1 - prior)))


def _tokens(con: duckdb.DuckDBPyConnection) -> None:
    # blk__a: one block of 10 (ids 0-9), singletons after; blk__b: 0 for ids 0-2 and 10-12, 1 for
    # ids 3-5 and 13-15 (two blocks of six), unique elsewhere; x__w0 is not a token, never touched
    con.execute("""CREATE TABLE enc AS SELECT i AS enc_id,
                   CASE WHEN i < 10 THEN 100 ELSE i END::BIGINT AS blk__a,
                   CASE WHEN i % 10 < 3 AND i < 13 THEN 0 WHEN i % 10 < 6 AND i < 16 THEN 1 ELSE 1000 + i END::BIGINT AS blk__b,
                   i * 10 AS x__w0
                   FROM range(20) t(i)""")


def _fallback_pairs(con: duckdb.DuckDBPyConnection, table: str = "enc") -> set[tuple[int, int]]:
    return set(con.execute(f"""
        WITH x AS (SELECT enc_id, unnest(fallback_tokens) AS t FROM {table})
        SELECT DISTINCT a.enc_id, b.enc_id FROM x a JOIN x b ON a.t = b.t AND a.enc_id < b.enc_id""").fetchall())


def test_cap_refines_oversized_blocks_with_a_partner_that_is_oversized_too():
    con = duckdb.connect()
    _tokens(con)
    before = con.execute("SELECT * FROM enc ORDER BY enc_id").df()
    assert largest_block(con, "enc") == 10
    stats = cap_blocks(con, "enc", cap=4)
    after = con.execute("SELECT * FROM enc ORDER BY enc_id").df()
    assert largest_block(con, "enc") <= 4
    assert stats.oversized_values == {"blk__a": 1, "blk__b": 2}
    # a = 100 AND b keeps {0,1,2} and {3,4,5}: pairs that neither capped rule would keep
    assert stats.partner == {"blk__a": "blk__b", "blk__b": "blk__a"}
    a = after.blk__a
    assert a[0] == a[1] == a[2] != a[3] == a[4] == a[5]
    assert not set(a.iloc[:10]) & set(before.blk__a)  # new values, not old blocks
    assert a.iloc[6:10].nunique() == 4  # b unique there: singletons, whose pairs no rule needs
    # blocks within the cap and non-token columns are unchanged
    pd.testing.assert_series_equal(after.blk__a.iloc[10:].astype("int64"), before.blk__a.iloc[10:])
    pd.testing.assert_series_equal(after.x__w0, before.x__w0)
    assert after.fallback_tokens.isna().all()  # every oversized row found a finer block


def test_a_group_still_over_the_cap_is_tiled_into_a_connected_chain():
    """Many distinct encodings of one frequent contacter can fill a block by themselves; the
    cap must not cut them off from each other: they are tiled, not dropped."""
    con = duckdb.connect()
    con.execute("""CREATE TABLE enc AS SELECT i AS enc_id, CASE WHEN i < 30 THEN 7 ELSE i END::BIGINT AS blk__a,
                   CASE WHEN i < 30 THEN 9 ELSE i END::BIGINT AS blk__b FROM range(40) t(i)""")
    stats = cap_blocks(con, "enc", cap=6)
    assert stats.dropped_encodings == {"blk__a": 30, "blk__b": 30}
    assert largest_block(con, "enc") <= 6
    tokens = con.execute("SELECT enc_id, fallback_tokens FROM enc ORDER BY enc_id").df()
    assert tokens.fallback_tokens.iloc[:30].map(len).min() >= 1 and tokens.fallback_tokens.iloc[30:].isna().all()
    sizes = con.execute("SELECT count(*) FROM (SELECT unnest(fallback_tokens) t FROM enc) GROUP BY t").fetchall()
    assert max(n for (n,) in sizes) <= 6
    pairs = _fallback_pairs(con)
    per_row = pd.Series([x for p in pairs for x in p]).value_counts()
    assert per_row.max() <= 6  # partners per row bounded by the cap, not by the group
    graph = coo_matrix((np.ones(len(pairs)), tuple(zip(*pairs))), shape=(30, 30))
    assert scipy_components(graph, directed=False)[0] == 1


def test_name_bands_keep_similar_names_in_an_oversized_scope_block():
    """Inside an oversized date-of-birth block, encodings whose names (MinHash copies scoped by
    that date) agree on a band stay candidates; unrelated names do not."""
    from simlink.link.block_caps import ScopedSignature

    rng = np.random.default_rng(3)
    words = rng.integers(-2**63, 2**63 - 1, size=(12, 8), dtype=np.int64)
    words[1] = words[0]                  # same name as 0
    words[2] = words[0]; words[2, 5] ^= 1 << 40  # one band differs: still shares the others
    frame = pd.DataFrame({"enc_id": np.arange(12), "blk__dob": 5, "blk__pc": (np.arange(12) * 5) % 12 + 100,  # 0, 1, 2 far apart in the tiles
                          **{f"g__w{i}": words[:, i] for i in range(8)}, "g__pop": 64})
    frame.loc[11, "g__pop"] = 0          # no name: no bands
    found = {}
    for with_bands in (False, True):
        con = duckdb.connect()
        con.execute("CREATE TABLE enc AS SELECT * FROM frame")
        cap_blocks(con, "enc", cap=10, signatures=[ScopedSignature("blk__dob", "g", 8)] if with_bands else None)
        found[with_bands] = _fallback_pairs(con)  # without a useful partner the block is tiled too
    assert found[True] - found[False] == {(0, 1), (0, 2), (1, 2)}  # the bands add the same names, only


def test_no_cap_leaves_tokens_and_a_tiny_cap_is_refused():
    con = duckdb.connect()
    _tokens(con)
    before = con.execute("SELECT * FROM enc ORDER BY enc_id").df()
    assert cap_blocks(con, "enc", cap=None).oversized_values == {}
    after = con.execute("SELECT * FROM enc ORDER BY enc_id").df()
    assert after.pop("fallback_tokens").isna().all()  # the rule's column exists, empty
    pd.testing.assert_frame_equal(after, before)
    with pytest.raises(ValueError):
        cap_blocks(con, "enc", cap=1)


def test_cap_leaves_the_scopes_of_the_name_copies_alone(tmp_path):
    """A capped date-of-birth block must not stop names from being compared inside it: the
    comparisons read ``sc__`` copies of the scope tokens, which the cap never rewrites."""
    from simlink.agency.encode import encode_file
    from simlink.agency.keys import generate_key_file, read_key_file
    from simlink.link.load import check_inputs, load, scope_column, scope_keys
    from simlink.link.settings import comparisons
    from simlink.schema import load_schema
    from simlink.synth import AGENCIES, SynthConfig, write_synth

    write_synth(SynthConfig(people=300, seed=5, errors="medium"), tmp_path)
    secret, schema = read_key_file(generate_key_file(tmp_path / "key.hex")), load_schema(None)
    paths = []
    for agency in AGENCIES:
        encode_file(tmp_path / f"{agency}.csv", tmp_path / f"{agency}.parquet", secret=secret, agency=agency,
                    schema=schema)
        paths.append(tmp_path / f"{agency}.parquet")
    scopes = scope_keys(schema)
    assert "dob" in scopes and "postcode" in scopes
    con = duckdb.connect()
    load(con, check_inputs(paths))
    original = con.execute("SELECT * FROM link_encodings ORDER BY enc_id").df()
    stats = cap_blocks(con, "link_encodings", cap=2)
    capped = con.execute("SELECT * FROM link_encodings ORDER BY enc_id").df()
    assert stats.oversized_values["blk__dob"] > 0
    assert not capped["blk__dob"].equals(original["blk__dob"])  # the rule's token was refined ...
    for key in scopes:  # ... the scope copies are the agency's tokens, untouched
        pd.testing.assert_series_equal(capped[scope_column(key)], original[f"blk__{key}"], check_names=False)
    sql = str([c.get_comparison("duckdb").as_dict() for c in comparisons(schema)])
    assert "sc__dob" in sql and "sc__postcode" in sql
    assert "blk__dob" not in sql and "blk__postcode" not in sql
