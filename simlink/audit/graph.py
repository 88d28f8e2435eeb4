"""Similarity-graph matching attack (after Vidanage, Christen, Ranbaduge & Schnell 2020).

Bloom filters are built to preserve similarity, so the *graph* of pairwise similarities
between a field's distinct filters has the shape of the graph of similarities between the
names behind them, whatever the key. The attacker builds both graphs on the most frequent
nodes of each side (equal node counts, so degrees are on one scale), describes every node
by its place in its graph (degree, weighted degree and neighbours' mean degree at four
similarity thresholds, strongest edges) plus what it shows on its own (share of records,
popcount), and pairs nodes across the graphs by minimum-cost assignment (Hungarian).

Edge weights on the plaintext side are not q-gram Dice in the clear but the Dice of the
names encoded under the public schema with a key of the attacker's own: the schema is
public, so this reproduces the encoded side's similarity scale (collisions, BLIP noise,
folding, balancing) where raw q-gram Dice would need calibrating. Only salting cannot be
reproduced: the attacker does not know each record's salt value.

The structural matching is then refined by seed-and-extend: its most clear-cut pairs become
anchors, and every node is re-described by its similarities to the anchors of its own side
(a filter's similarity to the filters of "smith" and "smyth" mirrors its name's similarity
to those names); matching on these vectors, mixed with the structural cost, and repeating
recovers nodes the structure alone cannot tell apart.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from scipy.optimize import linear_sum_assignment

from simlink.audit.encoded import FieldFilters
from simlink.agency.bloom import FieldEncoder, unpack
from simlink.schema import FieldSpec

MAX_NODES = 1000  # most frequent nodes per side; the Hungarian step is cubic in this
DEGREE_TARGETS = (1.0, 3.0, 10.0, 30.0)  # mean plaintext degrees that set the edge thresholds
# The refinement settings below were chosen on one simulated population (1,500 people,
# seed 5, weak schema) among anchor shares 0.1-0.5 and weights 0-1, and checked on another
# (4,000 people, seed 9); benchmarks/graph_attack_bench.py measures them on a third.
REFINE_ROUNDS = 3
ANCHOR_SHARE = 0.4  # share of matched pairs, the most clear-cut, kept as anchors
STRUCTURE_WEIGHT = 0.5  # weight of the structural cost next to the anchor cost when refining
ATTACKER_KEY = hashlib.sha256(b"simlink audit: the attacker's own key").digest()


@dataclasses.dataclass(frozen=True)
class GraphMatch:
    """Per distinct filter: guessed name or None (refined and structural-only matching)."""

    guesses: list[str | None]
    structural: list[str | None]
    nodes: int  # nodes matched per side


def simulate_filters(spec: FieldSpec, names: list[str]) -> np.ndarray:
    """(names, stored_bits) bool: the names encoded under the public schema with the
    attacker's own key. Salting is dropped: the attacker cannot know each record's salt."""
    unsalted = dataclasses.replace(spec, hardening=dataclasses.replace(spec.hardening, salt_derivation=""))
    words, _ = FieldEncoder(unsalted, ATTACKER_KEY, "attacker").encode(names)
    return unpack(words)


def dice_matrix(matrix: np.ndarray) -> np.ndarray:
    """All-pairs Dice similarity of boolean filters, diagonal zeroed (no self-loops)."""
    m = matrix.astype(np.float32)
    pop = m.sum(axis=1)
    sim = 2.0 * (m @ m.T) / np.maximum(pop[:, None] + pop[None, :], 1.0)
    np.fill_diagonal(sim, 0.0)
    return sim


def edge_thresholds(sim: np.ndarray) -> np.ndarray:
    """Similarity thresholds at which the plaintext graph has the target mean degrees; the
    same thresholds apply to the encoded graph, whose similarities are on the same scale."""
    n = len(sim)
    upper = np.sort(sim[np.triu_indices(n, 1)])[::-1]
    ranks = np.clip((np.array(DEGREE_TARGETS) * n / 2).astype(int), 0, len(upper) - 1)
    return upper[ranks]


def node_features(sim: np.ndarray, share: np.ndarray, popcount: np.ndarray, thresholds: np.ndarray,
                  *, own: bool = True) -> np.ndarray:
    """Structural description of every node of one similarity graph; with ``own`` also the
    node's share of records and popcount (what the frequency attack uses)."""
    columns = []
    for t in thresholds:
        adjacency = sim >= t
        degree = adjacency.sum(axis=1).astype(np.float64)
        weighted = np.where(adjacency, sim, 0.0).sum(axis=1)
        neighbour = (adjacency @ degree) / np.maximum(degree, 1.0)
        columns += [np.log1p(degree), np.log1p(weighted), np.log1p(neighbour)]
    top = -np.sort(-sim, axis=1)[:, :5]
    columns += [top[:, 0], top.mean(axis=1)]
    if own:
        columns += [np.log(np.maximum(share, 1e-12)), popcount / max(float(popcount.max()), 1.0)]
    return np.stack(columns, axis=1)


def _standardise(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate([a, b])
    mean, std = both.mean(axis=0), both.std(axis=0)
    std[std == 0] = 1.0
    return (a - mean) / std, (b - mean) / std


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and of b."""
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def _scaled(cost: np.ndarray) -> np.ndarray:
    return cost / max(float(np.median(cost)), 1e-9)


def _anchors(cost: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Indices into the matched pairs, the most clear-cut first: a pair counts by how far
    its cost is below the encoded node's next-best option (0 if it is not its best)."""
    chosen = cost[rows, cols]
    row_costs = cost[rows]
    runner = np.partition(row_costs, 1, axis=1)[:, 1]
    margin = np.where(np.isclose(chosen, row_costs.min(axis=1)), runner - chosen, 0.0)
    ranked = np.argsort(-margin, kind="stable")
    return ranked[: max(2, int(len(ranked) * ANCHOR_SHARE))]


def graph_attack(filters: FieldFilters, reference: dict[str, float], *, max_nodes: int = MAX_NODES,
                 own_features: bool = True, refine_rounds: int = REFINE_ROUNDS) -> GraphMatch:
    """Match the field's most frequent distinct filters to reference names by graph structure."""
    n_distinct = len(filters.counts)
    size = min(max_nodes, n_distinct, len(reference))
    if size < 3:
        return GraphMatch([None] * n_distinct, [None] * n_distinct, 0)
    names = list(reference)[:size]  # the reference is sorted, most common first
    order = np.argsort(-filters.counts, kind="stable")[:size]
    encoded, plain = filters.matrix[order], simulate_filters(filters.spec, names)
    sim_e, sim_p = dice_matrix(encoded), dice_matrix(plain)
    thresholds = edge_thresholds(sim_p)
    share_p = np.array([reference[n] for n in names])
    feat_e = node_features(sim_e, filters.counts[order] / filters.counts.sum(), encoded.sum(axis=1),
                           thresholds, own=own_features)
    feat_p = node_features(sim_p, share_p / share_p.sum(), plain.sum(axis=1), thresholds, own=own_features)
    structure = _scaled(_distance(*_standardise(feat_e, feat_p)))
    rows, cols = linear_sum_assignment(structure)
    structural = _spread(rows, cols, order, names, n_distinct)
    cost = structure
    for _ in range(refine_rounds):
        keep = _anchors(cost, rows, cols)
        anchor_cost = _distance(sim_e[:, rows[keep]], sim_p[:, cols[keep]])
        cost = _scaled(anchor_cost) + STRUCTURE_WEIGHT * structure
        rows, cols = linear_sum_assignment(cost)
    return GraphMatch(_spread(rows, cols, order, names, n_distinct), structural, size)


def _spread(rows: np.ndarray, cols: np.ndarray, order: np.ndarray, names: list[str],
            n_distinct: int) -> list[str | None]:
    """Guesses per distinct filter from matched (node, name) index pairs."""
    guesses: list[str | None] = [None] * n_distinct
    for r, c in zip(rows.tolist(), cols.tolist()):
        guesses[int(order[r])] = names[c]
    return guesses


def chance_share(filters: FieldFilters, reference: dict[str, float], truth: list[str | None],
                 *, max_nodes: int = MAX_NODES) -> float:
    """Expected share of records named right by a uniformly random one-to-one matching of
    the same nodes: the baseline the attack must clearly beat to be more than luck."""
    size = min(max_nodes, len(filters.counts), len(reference))
    if size < 3 or not len(truth):
        return 0.0
    names = set(list(reference)[:size])
    node = np.full(len(filters.counts), False)
    node[np.argsort(-filters.counts, kind="stable")[:size]] = True
    hits = sum(1 for i, t in zip(filters.inverse.tolist(), truth) if i >= 0 and node[i] and t in names)
    return hits / size / len(truth)
