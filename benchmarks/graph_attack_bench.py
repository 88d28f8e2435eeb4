"""What the similarity-graph matching attack owes to each of its parts, and what it costs.

On a simulated population (simlink.audit.simulate; names drawn from simlink synth's name
lists) encoded under a weak, an unhardened and the default schema, the script runs the
graph attack on each name field with both references (census = bundled US Census 1990
lists, a different source; true = the population's own name lists) in four variants:

* full: structural features incl. share of records and popcount, then seed-and-extend;
* structural: the Hungarian matching on structural features alone (no refinement);
* graph only: no share of records, no popcount: similarity-graph features only;
* graph only, no refinement: the bare graph matching;

and prints the share of records named right next to a random matching of the same nodes
(chance). Also the time per field (taken as measured, under whatever load the machine had).

    python benchmarks/graph_attack_bench.py --people 5000

Writes benchmarks/results/graph_attack_bench.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simlink.audit import _truth_names  # noqa: E402
from simlink.audit.encoded import from_table  # noqa: E402
from simlink.audit.graph import chance_share, graph_attack  # noqa: E402
from simlink.audit.reference import NAME_FIELDS, read_reference, synth_reference  # noqa: E402
from simlink.audit.simulate import simulate  # noqa: E402
from simlink.agency.encode import Encoder  # noqa: E402
from simlink.schema import Hardening, Schema, load_schema  # noqa: E402

SECRET = bytes(range(7, 39))
VARIANTS = {
    "full": {},
    "structural": {"refine_rounds": 0},
    "graph only": {"own_features": False},
    "graph only, no refinement": {"own_features": False, "refine_rounds": 0},
}


def names_variant(bits: int, hashes: int, hashing: str) -> Schema:
    base = load_schema(None)
    fields = tuple(dataclasses.replace(f, bits=bits, hashes=hashes, hashing=hashing, hardening=Hardening())
                   if f.name in NAME_FIELDS else f for f in base.fields)
    return dataclasses.replace(base, fields=fields)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-nodes", type=int, nargs="*", default=[1000])
    args = parser.parse_args()
    true = synth_reference("true")
    table, _ = simulate(true.names("given_name"), true.names("family_name"), args.people, seed=args.seed)
    references = {"census": read_reference(None), "true": true}
    schemas = {"weak: 256 bits, double hashing": names_variant(256, 10, "double"),
               "unhardened (512 bits, k=10)": names_variant(512, 10, "random"),
               "default (salt + balance + permute)": load_schema(None)}
    rows = []
    for schema_name, schema in schemas.items():
        encoded = from_table(Encoder(schema, SECRET, "police").encode_table(table), schema)
        truth = _truth_names(encoded, table)
        for ref_name, reference in references.items():
            for max_nodes in args.max_nodes:
                for field_name in NAME_FIELDS:
                    filters, names = encoded.filters(field_name), reference.names(field_name)
                    right_name = truth[field_name]
                    row = {"schema": schema_name, "reference": ref_name, "field": field_name,
                           "max_nodes": max_nodes, "distinct_filters": int(len(filters.counts)),
                           "chance": chance_share(filters, names, right_name, max_nodes=max_nodes)}
                    for variant, options in VARIANTS.items():
                        started = time.perf_counter()
                        match = graph_attack(filters, names, max_nodes=max_nodes, **options)
                        row[f"{variant} s"] = time.perf_counter() - started
                        inverse = filters.inverse.tolist()
                        row[variant] = float(np.mean([i >= 0 and match.guesses[i] == t
                                                      for i, t in zip(inverse, right_name)]))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    columns = ["schema", "reference", "field", "max_nodes", "chance"] + list(VARIANTS) + ["full s"]
    lines = [f"# Graph-matching attack: parts and cost ({args.people:,} simulated people, seed {args.seed}, "
             f"{table.num_rows:,} records)", "",
             "Share of records whose name (this field) the attack got right; chance = a random one-to-one "
             "matching of the same nodes. Times in seconds per field, 2 cores shared with other jobs.", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in columns) + " |")
    text = "\n".join(lines)
    print(text)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "graph_attack_bench.md").write_text(text + "\n", encoding="utf-8")
    (results / "graph_attack_bench.json").write_text(json.dumps(
        {"people": args.people, "seed": args.seed, "records": table.num_rows, "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
