"""Persons from scored pairs: the decision rule and the clustering, in DuckDB SQL.

Both backends end here: DuckDB clusters its own predictions, Spark's kept pairs come back
as an Arrow table first, so the same pairs give the same persons whichever engine scored
them.

The rule (measured in benchmarks/cluster_rules.py, docs/linkage.md): a pair is linked when
its match weight (posterior log2 odds, prior included) reaches ``log2(C / N) + 1.5`` bits, with
``C`` the candidate pairs and ``N`` the distinct encodings. A pair kept there is false with
probability at most ``N/C * 2^-1.5``, so the false links expected among all candidates stay
below ``N/2.8`` however the candidates grow (the bound is loose: measured precision 0.998 at 1M
contacts). A fixed match-probability threshold lets them grow with the candidates and chains
distinct people together. Format 2 (scoped EM model), pairwise F1 at margins 1.5 / 3.5:
synth 20k medium 0.9945 / 0.9940, high 0.9788 / 0.9752, 1M contacts 0.9927 / 0.9915, and
FEBRL4/FEBRL3 0.954 / 0.929 and 0.958 / 0.909 (the margin 3.5 had been chosen on format 1,
where a margin of 4 cost the one-file police dedupe of tests/test_link.py 0.05 of F1).
Persons are the connected
components of the linked pairs (label propagation with pointer jumping, a few passes);
dropping weak bridges of components on top was measured and did not help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

# Bits of match weight over log2(candidate pairs per encoding): benchmarks/cluster_rules.py.
DEFAULT_MARGIN = 1.5
MAX_PASSES = 200


@dataclass(frozen=True)
class Decision:
    """The cut on match weight that links a pair, and how it was reached (for the metadata)."""

    match_weight: float
    evidence_bits: float | None
    prior: float
    rule: str

    @property
    def match_probability(self) -> float:
        return 1.0 / (1.0 + 2.0 ** -self.match_weight)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "match_weight": round(self.match_weight, 4),
                "match_probability": self.match_probability,
                "evidence_bits": None if self.evidence_bits is None else round(self.evidence_bits, 4),
                "prior": self.prior}


def prior_weight(prior: float) -> float:
    return math.log2(prior / (1.0 - prior))


def weight_decision(prior: float, candidate_pairs: int, encodings: int,
                    margin: float = DEFAULT_MARGIN) -> Decision:
    """Link at match weight (posterior log2 odds) >= log2(C/N) + margin bits.

    A pair kept at that weight is a false link with probability at most N/C * 2^-margin, so
    the false links expected among all C candidate pairs stay below N * 2^-margin: a fixed
    share of the encodings, however the candidates grow (the prior already follows the
    number of possible pairs; this follows the number of candidate pairs)."""
    per_encoding = max(candidate_pairs, 1) / max(encodings, 1)
    weight = math.log2(per_encoding) + margin
    return Decision(weight, weight - prior_weight(prior), prior, f"match weight >= log2(pairs/encoding) + {margin:g}")


def probability_decision(prior: float, threshold: float) -> Decision:
    """A fixed match-probability threshold (``--threshold``), as a match-weight cut."""
    weight = math.log2(threshold / (1.0 - threshold))
    return Decision(weight, weight - prior_weight(prior), prior, f"match probability >= {threshold:g}")


def connected_components(con: duckdb.DuckDBPyConnection, edges: str, nodes: str, out: str,
                         left: str = "enc_id_l", right: str = "enc_id_r", node: str = "enc_id") -> int:
    """``out(enc_id, cluster_id)``: every node of ``nodes`` with the least id of its component
    in the graph ``edges``; returns the number of passes. Ids are BIGINT."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE cc_edges AS SELECT {left} AS a, {right} AS b FROM {edges} "
                f"UNION ALL SELECT {right}, {left} FROM {edges}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE cc_label AS
                    SELECT n.{node} AS node, least(n.{node}, coalesce(min(e.b), n.{node})) AS label
                    FROM (SELECT DISTINCT {node} FROM {nodes}) n LEFT JOIN cc_edges e ON e.a = n.{node} GROUP BY n.{node}""")
    passes = 0
    while True:
        passes += 1
        # a node takes the least label among its neighbours, then the label of its label
        con.execute("""CREATE OR REPLACE TEMP TABLE cc_next AS
                       WITH hop AS (SELECT l.node, least(l.label, coalesce(min(n.label), l.label)) AS label
                                    FROM cc_label l LEFT JOIN cc_edges e ON e.a = l.node
                                    LEFT JOIN cc_label n ON n.node = e.b GROUP BY l.node, l.label)
                       SELECT h.node, least(h.label, j.label) AS label FROM hop h JOIN hop j ON j.node = h.label""")
        changed = con.execute("""SELECT count(*) FROM cc_next x JOIN cc_label l USING (node)
                                 WHERE x.label <> l.label""").fetchall()[0][0]
        con.execute("DROP TABLE cc_label")
        con.execute("ALTER TABLE cc_next RENAME TO cc_label")
        if not changed or passes >= MAX_PASSES:
            break
    if passes >= MAX_PASSES:
        raise RuntimeError("clustering did not settle")  # cannot happen: labels only decrease
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT node AS enc_id, label AS cluster_id FROM cc_label")
    con.execute("DROP TABLE cc_label")
    con.execute("DROP TABLE cc_edges")
    return passes


def cluster_pairs(con: duckdb.DuckDBPyConnection, scored: str, decision: Decision, out: str = "link_clusters",
                  nodes: str = "link_encodings") -> int:
    """Persons (``out``) from the scored pairs in ``scored`` (enc_id_l, enc_id_r, match_weight)
    that pass ``decision``; returns the number of linked pairs."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE link_linked_pairs AS SELECT enc_id_l, enc_id_r FROM {scored}
                    WHERE match_weight >= {decision.match_weight!r}""")
    linked = con.execute("SELECT count(*) FROM link_linked_pairs").fetchall()[0][0]
    connected_components(con, "link_linked_pairs", nodes, out)
    con.execute("DROP TABLE link_linked_pairs")
    return int(linked)
