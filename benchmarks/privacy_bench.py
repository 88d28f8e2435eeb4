"""Privacy/utility trade-off of the hardening options: linkage F1 against re-identification.

For each configuration of the name fields' filters (everything else as in the default
schema) the script encodes one ``simlink synth`` world for the four agencies, links it with
``simlink.link.link_files`` (Splink on DuckDB) and scores pairwise F1 against the truth;
then it attacks the police file alone (frequency, pattern, insider, blocking-token and
similarity-graph attacks), as an outsider with no key, with two references:
the bundled US Census 1990 lists (a different source from the data) and the true name
distribution of the data (the strongest case: a perfect census). The cleartext Splink
baseline is run once for comparison.

    python benchmarks/privacy_bench.py --people 10000

Writes benchmarks/results/privacy_bench.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import linkeval  # noqa: E402
from simlink.audit import _truth_names, audit_file  # noqa: E402
from simlink.audit.encoded import read_encoded  # noqa: E402
from simlink.audit.graph import chance_share  # noqa: E402
from simlink.audit.reference import NAME_FIELDS, Reference, normalise_counts, read_reference  # noqa: E402
from simlink.agency.encode import encode_file  # noqa: E402
from simlink.agency.keys import generate_key_file, read_key_file  # noqa: E402
from simlink.link import DEFAULT_THRESHOLD, link_files  # noqa: E402
from simlink.schema import Schema, load_schema, schema_from_dict  # noqa: E402

SALT = "date_of_birth:year"
CONFIGS: dict[str, dict] = {
    "weak: 256 bits, double hashing": {"bits": 256, "hashes": 10, "hashing": "double"},
    "unhardened (512 bits, k=10)": {},
    "permute": {"permute": True},
    "blip eps=3": {"blip_epsilon": 3.0},
    "blip eps=2": {"blip_epsilon": 2.0},
    "xor_fold": {"xor_fold": True},
    "balance+permute": {"balance": True, "permute": True},
    "salt dob year": {"salt_derivation": SALT},
    "salt + blip eps=3": {"salt_derivation": SALT, "blip_epsilon": 3.0},
    "salt + balance+permute": {"salt_derivation": SALT, "balance": True, "permute": True},
    "salt + xor_fold": {"salt_derivation": SALT, "xor_fold": True},
    "salt, no blk__names": {"salt_derivation": SALT, "_drop_blocking": ["names"]},
    "salt, blk__names+year": {"salt_derivation": SALT, "_names_plus": "date_of_birth:year"},
    "salt + balance+permute, no blk__names": {"salt_derivation": SALT, "balance": True, "permute": True,
                                              "_drop_blocking": ["names"]},
}
FILTER_KEYS = ("bits", "hashes", "hashing")


def variant(base: Schema, options: dict) -> Schema:
    """The default schema with the name fields' filter and hardening settings replaced
    (hardening starts from none, so each row is exactly the options it names)."""
    doc = base.to_dict()
    doc["fields"] = [dict(f) for f in doc["fields"]]
    for f in doc["fields"]:
        if f["name"] in NAME_FIELDS:
            hardening = {}  # start unhardened: the shipped default is itself one of the rows
            for key, value in options.items():
                if key in FILTER_KEYS:
                    f[key] = value
                elif not key.startswith("_"):
                    hardening[key] = value
            f["hardening"] = hardening
    drop = set(options.get("_drop_blocking", []))
    doc["blocking"] = [b for b in doc["blocking"] if b["name"] not in drop]
    if "_names_plus" in options:
        for b in doc["blocking"]:
            if b["name"] == "names":  # a mixed key cannot be unordered: names+year is ordered
                b["parts"] = list(b["parts"]) + [options["_names_plus"]]
                b.pop("unordered", None)
    doc["name"] = "privacy-bench"
    return schema_from_dict(doc)


def true_reference(csv_paths: list[Path]) -> Reference:
    """The data's own name distribution (all agencies): the strongest attacker."""
    fields = {}
    for f in NAME_FIELDS:
        counts: dict[str, float] = {}
        for path in csv_paths:
            column = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                include_columns=[f], column_types={f: "string"})).column(f).to_pylist()
            for name in column:
                if name:
                    counts[name] = counts.get(name, 0.0) + 1
        fields[f] = normalise_counts(counts)
    return Reference(fields, "true distribution of the data")


def run_config(name: str, schema: Schema, data: dict, secret: bytes, work: Path,
               references: dict[str, Reference]) -> dict:
    folder = work / f"cfg{abs(hash(name)) % 10**8}"
    folder.mkdir(parents=True, exist_ok=True)
    encoded = []
    for csv in data["csv"]:
        agency = csv.stem
        out = folder / f"{agency}.parquet"
        encode_file(csv, out, secret=secret, agency=agency, schema=schema, overwrite=True)
        encoded.append(out)
    keep: dict = {}
    link_files(encoded, folder / "link.duckdb", overwrite=True, keep_probability=0.01, _keep_working=keep, charts=False)
    truth = pd.read_csv(data["truth"])
    sweep = {t: linkeval.pairwise_quality(linkeval.cluster_at(keep["scored"], keep["events"], t), truth)["f1"]
             for t in (0.5, 0.8, 0.9, 0.95, 0.99)}
    row = {"config": name, "f1": sweep.get(DEFAULT_THRESHOLD, max(sweep.values())), "f1_best": max(sweep.values())}
    police_csv = next(p for p in data["csv"] if p.stem == "police")
    for label, ref in references.items():
        report = audit_file(folder / "police.parquet", ref, truth=police_csv)
        for attack, rate in report.any_name.items():
            row[f"{attack}|{label}"] = rate
        row[f"worst|{label}"] = report.worst
        row[f"blind|{label}"] = report.blind_guess
        row[f"excess|{label}"] = report.excess
        row[f"graph_chance|{label}"] = graph_chance(folder / "police.parquet", police_csv, ref)
    row["largest_token_share"] = max(report.token_concentration.values())
    return row


def graph_chance(encoded_path: Path, truth_csv: Path, reference: Reference) -> float:
    """What a random one-to-one matching of the graph attack's nodes would get right (given
    plus family share: an upper bound for given OR family), to compare the graph column with."""
    encoded = read_encoded(encoded_path)
    truth = _truth_names(encoded, truth_csv)
    return sum(chance_share(encoded.filters(f), reference.names(f), truth[f]) for f in truth)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work", type=Path, default=Path("/tmp/simlink-privacy-bench"))
    parser.add_argument("--only", nargs="*", help="run only these configurations")
    parser.add_argument("--name", default="privacy_bench", help="results file name (without extension)")
    args = parser.parse_args()
    started = time.perf_counter()
    data = linkeval.prepare(args.work / "data", args.people, args.seed, "medium")
    key = args.work / "key.hex"
    if not key.exists():
        generate_key_file(key)
    secret, base = read_key_file(key), load_schema(None)
    references = {"census": read_reference(None), "true": true_reference(data["csv"])}
    import baseline_cleartext

    clear = baseline_cleartext.run(data["csv"], data["truth"])
    clear_f1 = clear["sweep"].get(str(DEFAULT_THRESHOLD), {}).get("f1")
    rows = []
    for name, options in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        row = run_config(name, variant(base, options), data, secret, args.work, references)
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    unhardened = table.loc[table.config == "unhardened (512 bits, k=10)", "f1"]
    if len(unhardened):
        table["f1_loss"] = unhardened.iloc[0] - table["f1"]
    columns = ["config", "f1", "f1_loss", "f1_best"] + sorted(c for c in table.columns if "|" in c) + ["largest_token_share"]
    columns = [c for c in columns if c in table.columns]  # f1_loss needs the unhardened row
    table = table[columns]
    lines = [f"# Privacy/utility trade-off ({args.people:,} people, seed {args.seed}, medium errors)", "",
             f"Linkage: simlink link (Splink 5 on DuckDB), pairwise F1 at threshold {DEFAULT_THRESHOLD}; "
             f"cleartext Splink baseline F1 = {clear_f1:.4f}.",
             "Attacks on the police file alone; re-identified = share of its records whose given OR family "
             "name the attack guessed right. References: census = bundled US Census 1990 lists; "
             "true = the data's own name distribution. graph_chance = what a random matching of the graph "
             "attack's nodes would get right (given + family).", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in table.iterrows():
        cells = [r["config"]] + [("n/a" if pd.isna(r[c]) else f"{r[c]:.4f}") if isinstance(r[c], float) else str(r[c])
                                 for c in columns[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"total {time.perf_counter() - started:.0f} s")
    text = "\n".join(lines)
    print(text)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.md").write_text(text + "\n", encoding="utf-8")
    (results / f"{args.name}.json").write_text(json.dumps(
        {"people": args.people, "seed": args.seed, "threshold": DEFAULT_THRESHOLD, "cleartext_f1": clear_f1,
         "rows": table.to_dict(orient="records")}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
