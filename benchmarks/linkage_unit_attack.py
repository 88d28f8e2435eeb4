"""The linkage unit's attacks on a schema: 4 agencies of ``simlink synth``, several keys.

The attacker holds every agency's encoded file, the public manifest, a public name list
(national and by year of birth) drawn from *another seed's* population, keys of its own,
and the persons of a linkage (here the true persons: a perfect linkage, stronger than a
real one). It is assumed to know each record's birth year. For each key the script runs
``simlink.audit.run.audit_corpus`` and reports, per field, the strongest attack beside the
blind guess (national and by year) and a random draw, for all records and for people with
>= 5 contacts.

    python benchmarks/linkage_unit_attack.py --people 20000 --keys 5 [--schema candidate.toml]

Writes benchmarks/results/<name>.json and .md (name defaults to linkage_unit_attack_<people>).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simlink.audit.run import audit_corpus  # noqa: E402
from simlink.audit.synthetic import encode_world, reference_from_world  # noqa: E402
from simlink.audit.verdict import BAR_POINTS  # noqa: E402
from simlink.schema import load_schema  # noqa: E402
from simlink.synth import SynthConfig, write_synth  # noqa: E402

SUBSETS = ("all", "5+ contacts")
FIELDS = ("given_name", "family_name")


def world(folder: Path, people: int, seed: int) -> Path:
    if not (folder / "truth.csv").exists():
        write_synth(SynthConfig(people=people, seed=seed), folder, overwrite=True)
    return folder


def run_key(index: int, folder: Path, schema, reference) -> dict:
    secret = hashlib.sha256(f"linkage-unit-bench-key-{index}".encode()).digest()
    started = time.perf_counter()
    corpus, truth, persons = encode_world(folder, schema, secret)
    verdict = audit_corpus(corpus, reference, truth, truth_persons=persons)
    row = {"key": index, "records": corpus.rows, "seconds": round(time.perf_counter() - started, 1),
           "verdict": verdict.line(), "passes": verdict.passes, "census": verdict.census,
           "structure": {k: v for k, v in verdict.structure.items() if k != "single_file_reports"}}
    for f in FIELDS:
        for s in SUBSETS:
            if s not in verdict.rates.get(f, {}):
                continue
            attack, rate = verdict.strongest[f][s]
            row[f"{f}|{s}"] = {"strongest": attack, "rate": rate, "records": verdict.rates[f][s]["records"],
                               **verdict.baselines[f][s],
                               "bar_blind": verdict.blind(f, s),
                               "attacks": {k: v for k, v in verdict.rates[f][s].items() if k != "records"}}
    print(json.dumps({k: row[k] for k in ("key", "records", "seconds", "verdict")}), flush=True)
    return row


def markdown(args, rows: list[dict], load: str, schema_name: str) -> str:
    lines = [f"# Linkage-unit attacks: {args.people:,} people, 4 agencies, {len(rows)} keys, schema '{schema_name}'",
             "", f"Target population seed {args.seed}; attacker's list from seed {args.list_seed} "
             f"({args.people:,} people, one entry per person, national and by year of birth). Persons: the true "
             "persons (a perfect linkage). Birth year assumed known. Bar: strongest attack <= the better blind "
             "guess (national or by year) + 1 point.", "", f"Load (`uptime`): {load}", "",
             "| key | field | records | strongest attack | rate | blind | blind by year | random | bar | verdict cell |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for f in FIELDS:
            for s in SUBSETS:
                cell = row.get(f"{f}|{s}")
                if not cell:
                    continue
                ok = "holds" if cell["rate"] <= cell["bar_blind"] + BAR_POINTS else "FAILS"
                lines.append(f"| {row['key']} | {f} [{s}] | {cell['records']:,} | {cell['strongest']} | "
                             f"{cell['rate']:.2%} | {cell['blind']:.2%} | {cell['blind_by_year']:.2%} | "
                             f"{cell['random']:.2%} | {cell['bar_blind'] + BAR_POINTS:.2%} | {ok} |")
    lines += ["", "Every attack's rate (mean over keys, all records):", ""]
    attacks = sorted({a for row in rows for f in FIELDS for a in row.get(f"{f}|all", {}).get("attacks", {})})
    lines.append("| field | " + " | ".join(attacks) + " |")
    lines.append("|---|" + "---|" * len(attacks))
    for f in FIELDS:
        seen = [[r[f"{f}|all"]["attacks"][a] for r in rows if a in r[f"{f}|all"]["attacks"]] for a in attacks]
        lines.append(f"| {f} | " + " | ".join(f"{sum(v) / len(v):.2%}" if v else "n/a" for v in seen) + " |")
    census = rows[0]["census"]
    lines += ["", f"Identical encodings (key 0): {census['share_in_groups_ge_k']:.2%} of records share theirs with "
              f">= 4 others in their file (largest group {census['largest_group']}); {census['share_in_other_file']:.2%} "
              f"have one in another file; named by the strongest attack: {census['named_in_groups']:.2%} / "
              f"{census['named_in_other_file']:.2%}.", "", "Verdicts:", ""]
    lines += [f"- key {r['key']}: {r['verdict']} ({r['seconds']} s)" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--list-seed", type=int, default=22)
    parser.add_argument("--keys", type=int, default=5, help="0 = re-render the Markdown of an earlier run's JSON")
    parser.add_argument("--schema", type=Path, default=None, help="schema TOML (default: the shipped default)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-linkage-unit-attack"))
    parser.add_argument("--name", default=None, help="results file name without extension")
    args = parser.parse_args()
    name = args.name or f"linkage_unit_attack_{args.people}" + (f"_{args.schema.stem}" if args.schema else "")
    results = ROOT / "benchmarks" / "results"
    if args.keys == 0:
        doc = json.loads((results / f"{name}.json").read_text())
        (results / f"{name}.md").write_text(markdown(args, doc["rows"], doc["load"], doc["schema"]), encoding="utf-8")
        return
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    schema = load_schema(args.schema)
    target = world(args.work / f"p{args.people}-s{args.seed}", args.people, args.seed)
    other = world(args.work / f"p{args.people}-s{args.list_seed}", args.people, args.list_seed)
    reference = reference_from_world(other)
    rows = [run_key(k, target, schema, reference) for k in range(args.keys)]
    results.mkdir(parents=True, exist_ok=True)
    text = markdown(args, rows, load, schema.name)
    (results / f"{name}.md").write_text(text, encoding="utf-8")
    (results / f"{name}.json").write_text(json.dumps({"people": args.people, "seed": args.seed, "list_seed": args.list_seed,
                                                      "schema": schema.name, "load": load, "rows": rows},
                                                     indent=2, default=str), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
