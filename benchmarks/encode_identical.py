"""Check that this checkout encodes the same bytes as a reference commit (default: main).

Usage: python benchmarks/encode_identical.py [--ref main] [--rows 50000] [--people 4000]

Speed work on the encoder must not change a single output byte: files encoded by different
simlink versions are linked together. This script exports ``simlink/`` of the reference
commit (``git archive``) to a temporary folder, encodes the same inputs with the reference
and with the working tree (each in its own process, so each imports its own code), and
compares the files' content: every column's values and validity, byte for byte, and the
manifest (``_content_digest``). The Parquet container may differ (e.g. the writer's page
encodings changed in 2.x speed work) without changing one value a reader sees; the table
also says whether the files themselves are identical. Inputs: the benchmark generator's records, and messy synthetic
agency files (``simlink synth --errors high``). Schemas: the hardened default, the default
with hardening off, and variants that exercise the other encoder paths (BLIP, XOR-fold,
double hashing, salting without balancing). A small chunk size exercises the caches across
chunks. Exit status 1 if any file's content differs. Writes benchmarks/results/encode_identical.md.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SECRET_HEX = "5e" * 32


def schema_variants() -> dict[str, dict]:
    """Schema documents by name; each differs in the encoder path it exercises."""
    from simlink.schema import load_schema

    default = load_schema().to_dict()
    plain = copy.deepcopy(default)
    for f in plain["fields"]:  # every field one unscoped copy (MinHash names without a scope)
        f["hardening"] = {}
        f["salt_by"] = []
    shapes = copy.deepcopy(default)  # the scoped encoder's other filter shapes
    for f in shapes["fields"]:
        if f["name"] == "given_name":  # 4-bit segments: several per byte
            f.update(bits=512, segments=128)
        elif f["name"] == "family_name":  # 32-bit segments, 2 AES blocks per token
            f.update(bits=1024, segments=32)
        elif f["name"] == "date_of_birth":  # bits not a power of two; 9 draws = 2 AES blocks
            f.update(bits=320, hashes=9)
        elif f["name"] == "postcode":
            f.update(bits=192, hashes=3)
    exotic = copy.deepcopy(default)
    for f in exotic["fields"]:
        if f["name"] in ("given_name", "family_name", "postcode"):  # format-1 style: unscoped bloom
            f.update(encoding="bloom", segments=0, salt_by=[], hashes=f["hashes"] if f["name"] == "postcode" else 10)
        if f["name"] == "given_name":
            f["hardening"] = {"blip_epsilon": 3.0, "xor_fold": True, "permute": True,
                              "salt_derivation": "date_of_birth:year"}
        elif f["name"] == "family_name":
            f["hardening"] = {"salt_derivation": "date_of_birth:year_month", "permute": True}
            f["hashing"] = "double"
        elif f["name"] == "postcode":
            f["hardening"] = {"balance": True}
        elif f["name"] == "nhs_number":
            f["hardening"] = {"xor_fold": True, "balance": True, "permute": True}
    # One blocking key per derivation the schema language offers, so every derivation is compared.
    extra = [("given_name", d) for d in ("value", "first_word", "initial", "soundex", "metaphone", "nysiis")]
    extra += [("family_name", "first_word"), ("date_of_birth", "year_month"), ("sex", "value")]
    extra += [("postcode", d) for d in ("full", "sector", "district", "area")] + [("nhs_number", "value")]
    exotic["blocking"] += [{"name": f"x_{f}_{d}", "parts": [f"{f}:{d}", "date_of_birth:month_day"]} for f, d in extra]
    exotic["blocking"].append({"name": "x_unordered", "parts": ["given_name:nysiis", "family_name:nysiis"],
                               "unordered": True})
    return {"default": default, "unhardened": plain, "shapes": shapes, "exotic": exotic}


EDGE_NAMES = ["Łukasz", "Ørsted", "Σοφία", "李小龍", "Ng", "O", "Mc Donald", "Jean-Luc Picard", "ÆTHELRED",
              "x" * 80, "Anna Maria " * 8, "D'Arcy", "Nguyễn Văn", "Мария", "", "Mr", "Al 2", "ß"]


def write_edge_cases(source: Path, path: Path, seed: int = 5) -> None:
    """The first 7,000 generated records as they are, then names that stay non-ASCII after
    normalisation, over-long and many-word names, titles and empty values mixed in: the
    ASCII fast paths and their fall-backs, within one file and across chunks."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=20_000)
    rng = np.random.default_rng(seed)
    tail = np.arange(len(frame)) >= 7_000
    for column in ("given_name", "family_name"):
        pick = tail & (rng.random(len(frame)) < 0.3)
        frame.loc[pick, column] = rng.choice(EDGE_NAMES, size=int(pick.sum()))
    for column, odd in (("postcode", ["", "ZZ99 3VZ", "sw1a1aa", "GIR 0AA"]), ("nhs_number", ["", "123", "943 476 5919"]),
                        ("date_of_birth", ["", "29/02/2001", "1 Jan 80", "19991231"])):
        pick = tail & (rng.random(len(frame)) < 0.05)
        frame.loc[pick, column] = rng.choice(odd, size=int(pick.sum()))
    frame.to_csv(path, index=False)


def _encode_all(code_root: str, jobs: list[tuple[str, str, str]], chunk_rows: int) -> None:
    """Child process: encode every (input, schema json, output) with the code under code_root."""
    from simlink.agency.encode import encode_file
    from simlink.schema import schema_from_dict

    assert Path(sys.modules["simlink"].__file__).resolve().is_relative_to(Path(code_root).resolve())
    for input_path, schema_path, output in jobs:
        schema = schema_from_dict(json.loads(Path(schema_path).read_text()))
        encode_file(input_path, output, secret=bytes.fromhex(SECRET_HEX), agency="police", schema=schema,
                    overwrite=True, strict=False, chunk_rows=chunk_rows)


def _run(code_root: Path, jobs: list[tuple[str, str, str]], chunk_rows: int) -> None:
    """Encode in a child process whose ``simlink`` is the copy under code_root."""
    spec = json.dumps({"root": str(code_root), "jobs": jobs, "chunk_rows": chunk_rows})
    subprocess.run([sys.executable, __file__, "--child", spec], check=True, cwd=str(code_root),
                   env={**os.environ, "PYTHONPATH": str(code_root)})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _content_digest(path: Path) -> str:
    """SHA-256 over every column (name, type, values, validity) and the manifest."""
    import numpy as np
    import pyarrow as pa

    table = pq.read_table(path)
    h = hashlib.sha256()
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        h.update(f"{name}:{column.type}".encode())
        h.update(np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool).tobytes())
        if pa.types.is_integer(column.type):
            h.update(np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False)).tobytes())
        else:
            h.update("\x00".join("" if v is None else str(v) for v in column.to_pylist()).encode("utf-8"))
    h.update(pq.ParquetFile(path).metadata.metadata[b"simlink"])
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="reference commit (default: main)")
    parser.add_argument("--rows", type=int, default=50_000, help="generated benchmark records")
    parser.add_argument("--people", type=int, default=4_000, help="synthetic people (messy agency files)")
    parser.add_argument("--chunk-rows", type=int, default=7_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        _encode_all(spec["root"], [tuple(j) for j in spec["jobs"]], spec["chunk_rows"])
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    from encode_bench import generate

    ref_commit = subprocess.run(["git", "rev-parse", args.ref], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        reference = tmp / "reference"
        reference.mkdir()
        archive = subprocess.run(["git", "archive", ref_commit, "simlink"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(reference)], input=archive, check=True)
        inputs = {"generated": tmp / "generated.csv"}
        generate(args.rows, inputs["generated"])
        inputs["edge_cases"] = tmp / "edge_cases.csv"
        write_edge_cases(inputs["generated"], inputs["edge_cases"])
        subprocess.run([sys.executable, "-m", "simlink", "synth", "--people", str(args.people), "--seed", "3",
                        "--errors", "high", "--out-dir", str(tmp / "synth")], check=True, cwd=ROOT,
                       capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for agency in ("police", "mental_health"):
            inputs[f"synth_{agency}"] = tmp / "synth" / f"{agency}.csv"
        schemas = {}
        for name, doc in schema_variants().items():
            schemas[name] = tmp / f"{name}.json"
            schemas[name].write_text(json.dumps(doc))
        jobs = {side: [(str(path), str(schemas[s]), str(tmp / f"{side}-{i}-{s}.parquet"))
                       for i, path in inputs.items() for s in schemas] for side in ("ref", "new")}
        _run(reference, jobs["ref"], args.chunk_rows)
        _run(ROOT, jobs["new"], args.chunk_rows)
        lines = [f"# encode byte-identity: working tree vs {args.ref} ({ref_commit[:10]})", "",
                 f"chunk_rows {args.chunk_rows} requested (CSV chunks are at least 1 MB, about 14,000 rows); generated records {args.rows:,}; synthetic people {args.people:,} (errors high)",
                 "", "| input | schema | rows | same content | content sha256 (first 16) | same file bytes |",
                 "|---|---|---:|---|---|---|"]
        failures = 0
        for (inp, sch, ref_out), (_, _, new_out) in zip(jobs["ref"], jobs["new"]):
            content = _content_digest(Path(new_out))
            same = _content_digest(Path(ref_out)) == content
            failures += not same
            same_file = _digest(Path(ref_out)) == _digest(Path(new_out))
            rows = pq.ParquetFile(new_out).metadata.num_rows
            input_name = Path(inp).stem
            lines.append(f"| {input_name} | {Path(sch).stem} | {rows:,} | {'yes' if same else 'NO'} | "
                         f"{content[:16]} | {'yes' if same_file else 'no'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encode_identical.md").write_text(text)
    if failures:
        print(f"{failures} file(s) differ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
