"""Which clustering rule holds its quality as the data grows (issue 10).

Links once (keeping every pair with match probability >= 0.5), then clusters the same
scored pairs with each rule and scores pairwise and B-cubed F1 and the headline counts
(people, people in 2+ services, people with repeat contacts) against the truth:

* ``cc@p``: connected components of pairs with match probability >= p (simlink before issue 10);
* ``evidence``: a cut on the evidence (match weight minus the prior weight, in bits) that
  follows the number of candidate pairs C over N distinct encodings: >= log2(C / N) + k.
  A non-match reaches evidence t with probability <= 2^-t, so the false links expected per
  encoding, C/N * 2^-t, stay below 2^-k however the candidates grow;
* ``bridges@p,h``: components at p, then edges that are bridges of their component and
  below h are dropped and components recomputed (one weak link does not join two people).

Python (scipy, networkx) here, to choose; the rule kept is SQL in simlink/link/clusters.py.

    python benchmarks/cluster_rules.py --folder /tmp/simlink-bench/q-20000-7-medium
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import linkeval  # noqa: E402

from simlink.evaluate import evaluate_clusters  # noqa: E402
from simlink.link import link_files  # noqa: E402


def components(nodes: pd.Index, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a, b = nodes.get_indexer(left), nodes.get_indexer(right)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes)))
    return connected_components(graph, directed=False)[1]


def drop_weak_bridges(nodes: pd.Index, edges: pd.DataFrame, high: float) -> np.ndarray:
    labels = components(nodes, edges.enc_id_l.to_numpy(), edges.enc_id_r.to_numpy())
    size = np.bincount(labels)
    big = size[labels[nodes.get_indexer(edges.enc_id_l)]] >= 3
    weak = edges[big & (edges.match_probability < high).to_numpy()]
    graph = nx.Graph()
    graph.add_edges_from(zip(edges.enc_id_l[big], edges.enc_id_r[big]))
    bridges = {frozenset(e) for e in nx.bridges(graph)}
    drop = np.array([frozenset((l, r)) in bridges for l, r in zip(weak.enc_id_l, weak.enc_id_r)], dtype=bool)
    kept = edges.drop(index=weak.index[drop])
    return components(nodes, kept.enc_id_l.to_numpy(), kept.enc_id_r.to_numpy())


def headline(assigned: pd.DataFrame) -> dict[str, int]:
    per = assigned.groupby("person_key").agg(n=("agency", "size"), services=("agency", "nunique"))
    return {"people": len(per), "people_2plus_services": int((per.services > 1).sum()),
            "repeat_contact_people": int((per.n > 1).sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    keep: dict = {}
    started = time.perf_counter()
    result = link_files([args.folder / f"{a}.parquet" for a in linkeval.AGENCIES], args.folder / "rules.duckdb",
                        overwrite=True, charts=False, keep_probability=0.01, _keep_working=keep, threads=2)
    link_seconds = time.perf_counter() - started
    model = json.loads(Path(result.model_file).read_text())["splink"]
    prior = model["probability_two_random_records_match"]
    prior_bits = math.log2(prior / (1 - prior))
    scored, events = keep["scored"], keep["events"]
    p = scored.match_probability.clip(1e-12, 1 - 1e-12)
    scored = scored.assign(evidence=np.log2(p / (1 - p)) - prior_bits)
    truth = pd.read_csv(args.folder / "truth.csv", dtype={"record_id": str})
    truth_counts = headline(truth.rename(columns={"person_id": "person_key"}))
    nodes = pd.Index(events.enc_id.unique())
    candidates, n = result.counts["blocked_pairs"], result.distinct_encodings
    rules: dict[str, np.ndarray] = {}
    for t in (0.5, 0.8, 0.95, 0.99, 0.999):
        e = scored[scored.match_probability >= t]
        rules[f"cc@{t}"] = components(nodes, e.enc_id_l.to_numpy(), e.enc_id_r.to_numpy())
    for k in (8, 10, 11, 12, 13, 14):
        cut = math.log2(candidates / n) + k
        e = scored[scored.evidence >= cut]
        rules[f"evidence k={k} (>= {cut:.1f} bits)"] = components(nodes, e.enc_id_l.to_numpy(), e.enc_id_r.to_numpy())
    for t, h in ((0.5, 0.99), (0.95, 0.99), (0.95, 0.999)):
        rules[f"bridges@{t},{h}"] = drop_weak_bridges(nodes, scored[scored.match_probability >= t].reset_index(drop=True), h)
    for k, extra in ((10, 4), (11, 4), (11, 8)):
        cut = math.log2(candidates / n) + k
        e = scored[scored.evidence >= cut].reset_index(drop=True)
        high = 1 / (1 + 2 ** -(cut + extra + prior_bits))
        rules[f"evidence k={k} + bridges below +{extra} bits"] = drop_weak_bridges(nodes, e, high)
    rows = []
    for name, labels in rules.items():
        mapping = pd.Series(labels, index=nodes)
        assigned = events.assign(person_key=mapping.loc[events.enc_id].to_numpy())[["agency", "record_id", "person_key"]]
        q = evaluate_clusters(assigned.astype({"record_id": str}), truth)
        counts = headline(assigned)
        rows.append({"rule": name, "pair_f1": q.pair_f1, "pair_precision": q.pair_precision,
                     "pair_recall": q.pair_recall, "bcubed_f1": q.bcubed_f1,
                     **{f"{k}_rel_error": counts[k] / truth_counts[k] - 1 for k in counts}})
    tag = args.tag or args.folder.name
    meta = {"folder": str(args.folder), "events": result.events, "distinct_encodings": n,
            "blocked_pairs": candidates, "prior": prior, "link_seconds": link_seconds,
            "load": os.getloadavg()[0], "truth": truth_counts}
    out = HERE / "results"
    (out / f"cluster_rules_{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# Clustering rules on {result.events:,} contacts ({n:,} distinct encodings, {candidates:,} candidate pairs; "
             f"load {meta['load']:.1f})", "",
             "| rule | pair F1 | precision | recall | B-cubed F1 | people err | 2+ services err | repeat err |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['pair_f1']:.4f} | {r['pair_precision']:.4f} | {r['pair_recall']:.4f} | "
                     f"{r['bcubed_f1']:.4f} | {r['people_rel_error']:+.2%} | {r['people_2plus_services_rel_error']:+.2%} | "
                     f"{r['repeat_contact_people_rel_error']:+.2%} |")
    linkeval.write_markdown(out / f"cluster_rules_{tag}.md", lines)


if __name__ == "__main__":
    main()
