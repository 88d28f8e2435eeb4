"""Which clustering rule holds its quality as the data grows (issue 10).

Links once (keeping every pair with match probability >= 0.5), then clusters the same
scored pairs with each rule and scores pairwise and B-cubed F1 and the headline counts
(people, people in 2+ services, people with repeat contacts) against the truth:

* ``cc@p``: connected components of pairs with match probability >= p (simlink before issue 10);
* ``evidence``: a cut on the evidence (match weight minus the prior weight, in bits) that
  follows the number of candidate pairs C over N distinct encodings: >= log2(C / N) + k.
  A non-match reaches evidence t with probability <= 2^-t, so the false links expected per
  encoding, C/N * 2^-t, stay below 2^-k however the candidates grow;
* ``weight``: a cut on the match weight itself (posterior log2 odds, prior included) at
  log2(C / N) + k: each linked pair is false with probability at most N/C * 2^-k, so the
  false links expected among all C candidates stay below N * 2^-k, a fixed share per encoding;
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
    cache = args.folder / "rules-scored.parquet"
    if cache.exists() and (args.folder / "rules-meta.json").exists():  # one scoring, many rule sweeps
        scored, events = pd.read_parquet(cache), pd.read_parquet(args.folder / "rules-events.parquet")
        meta = json.loads((args.folder / "rules-meta.json").read_text())
    else:
        keep: dict = {}
        started = time.perf_counter()
        result = link_files([args.folder / f"{a}.parquet" for a in linkeval.AGENCIES], args.folder / "rules.duckdb",
                            overwrite=True, charts=False, keep_probability=0.01, _keep_working=keep, threads=2)
        model = json.loads(Path(result.model_file).read_text())
        model = model.get("splink", model)  # the model file is plain Splink settings since 0.2
        meta = {"events": result.events, "distinct_encodings": result.distinct_encodings,
                "blocked_pairs": result.counts["blocked_pairs"], "link_seconds": time.perf_counter() - started,
                "prior": model["probability_two_random_records_match"]}
        scored, events = keep["scored"], keep["events"]
        scored.to_parquet(cache)
        events.to_parquet(args.folder / "rules-events.parquet")
        (args.folder / "rules-meta.json").write_text(json.dumps(meta))
    prior = meta["prior"]
    prior_bits = math.log2(prior / (1 - prior))
    p = scored.match_probability.clip(1e-12, 1 - 1e-12)
    scored = scored.assign(evidence=np.log2(p / (1 - p)) - prior_bits)
    truth = pd.read_csv(args.folder / "truth.csv", dtype={"record_id": str})
    truth_counts = headline(truth.rename(columns={"person_id": "person_key"}))
    nodes = pd.Index(events.enc_id.unique())
    candidates, n = meta["blocked_pairs"], meta["distinct_encodings"]
    rules: dict[str, np.ndarray] = {}
    def cc(edges: pd.DataFrame) -> np.ndarray:
        return components(nodes, edges.enc_id_l.to_numpy(), edges.enc_id_r.to_numpy())

    for t in (0.5, 0.95, 0.99, 0.999, 0.9999, 0.99999):
        rules[f"cc@{t}"] = cc(scored[scored.match_probability >= t])
    for k in (11, 14, 17):
        cut = math.log2(candidates / n) + k
        rules[f"evidence >= log2(C/N) + {k} (>= {cut:.1f} bits)"] = cc(scored[scored.evidence >= cut])
    for k in (1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8):
        cut = math.log2(candidates / n) + k
        p = 1 / (1 + 2 ** -cut)
        rules[f"weight >= log2(C/N) + {k} (p >= {p:.5f})"] = cc(scored[scored.match_weight >= cut])
    for t, h in ((0.95, 0.999), (0.99, 0.9999), (0.999, 0.99999)):
        rules[f"bridges@{t},{h}"] = drop_weak_bridges(nodes, scored[scored.match_probability >= t].reset_index(drop=True), h)
    for k, extra in ((2, 4), (3, 4), (4, 4)):
        cut = math.log2(candidates / n) + k
        rules[f"weight >= log2(C/N) + {k}, bridges below +{extra} bits"] = drop_weak_bridges(
            nodes, scored[scored.match_weight >= cut].reset_index(drop=True), 1 / (1 + 2 ** -(cut + extra)))
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
    meta |= {"folder": str(args.folder), "load": os.getloadavg()[0], "truth": truth_counts}
    out = HERE / "results"
    (out / f"cluster_rules_{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# Clustering rules on {meta['events']:,} contacts ({n:,} distinct encodings, {candidates:,} candidate pairs; "
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
