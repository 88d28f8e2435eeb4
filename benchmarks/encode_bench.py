"""Encoding throughput and peak memory on generated agency records.

Usage: python benchmarks/encode_bench.py [--rows 1000000] [--chunk-rows 200000]
                                        [--schemas default,unhardened] [--repeat 1]

Generates a CSV of the given size (random but realistic shapes: names from a syllable
grammar with a heavy-tailed frequency, dates in several formats, UK-format postcodes,
NHS numbers), then runs ``encode_file`` in a child process per schema and reports
records/second (wall clock, one process pinned to one core), CPU seconds per record
(``time.process_time``: comparable when other work shares the machine), peak resident memory
and the load average around the run. Schemas: ``default`` (the hardened default) and
``unhardened`` (every field one unsalted copy) and ``v1_default`` (the format-1 default).
With ``--ref main`` the simlink of that commit is timed too, alternating with this checkout
so that both see the same load. Writes benchmarks/results/encode_bench.json (best run per
schema by CPU time; ``--out`` names another file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SYLLABLES = ["an", "bel", "car", "dan", "el", "fer", "gar", "han", "is", "jo", "kel", "li", "mar",
             "nor", "ol", "pat", "quin", "ros", "sam", "tor", "ul", "vin", "wil", "xan", "yor", "zel"]


def _names(rng: np.random.Generator, n: int, vocabulary: int) -> np.ndarray:
    words = np.array(["".join(rng.choice(SYLLABLES, size=rng.integers(2, 4))).title() for _ in range(vocabulary)])
    ranks = np.minimum(rng.zipf(1.3, size=n), vocabulary) - 1
    return words[ranks]


def generate(rows: int, path: Path, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    dob = pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 365 * 65, rows), unit="D")
    contact = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 730, rows), unit="D")
    area = np.array(["B", "M", "LS", "SW", "NE", "CF", "G", "EH", "BS", "L"])[rng.integers(0, 10, rows)]
    postcode = (pd.Series(area) + pd.Series(rng.integers(1, 30, rows)).astype(str) + " "
                + pd.Series(rng.integers(0, 10, rows)).astype(str)
                + pd.Series(np.array(list("ABDEFGHJLNPQRSTUWXYZ"))[rng.integers(0, 20, rows)])
                + pd.Series(np.array(list("ABDEFGHJLNPQRSTUWXYZ"))[rng.integers(0, 20, rows)]))
    frame = pd.DataFrame({
        "record_id": [f"R{i:09d}" for i in range(rows)],
        "given_name": _names(rng, rows, 3000),
        "family_name": _names(rng, rows, 40000),
        "date_of_birth": np.where(rng.random(rows) < 0.5, dob.strftime("%d/%m/%Y"), dob.strftime("%Y-%m-%d")),
        "sex": rng.choice(["M", "F", "1", "2", "male", "female", ""], size=rows),
        "postcode": postcode,
        "contact_date": contact.strftime("%Y-%m-%d"),
        "nhs_number": pd.Series(rng.integers(4_000_000_000, 9_999_999_999, rows)).astype(str),
    })
    frame.to_csv(path, index=False)


def _schema(name: str):
    from simlink.schema import load_schema, schema_from_dict

    schema = load_schema()
    if name == "unhardened":  # format 2: every field one unsalted copy
        doc = schema.to_dict()
        for f in doc["fields"]:
            f["hardening"] = {}
            f["salt_by"] = []
        schema = schema_from_dict(doc)
    elif name == "v1_default":  # the format-1 default, for comparison
        from importlib import resources

        schema = load_schema(str(resources.files("simlink.data") / "legacy_v1_schema.toml"))
    return schema


def _peak_kib() -> float:
    """This process's peak resident memory in KiB. ``ru_maxrss`` survives ``exec``, so in a
    child started by the (large) parent it reports at least the parent's size at fork time;
    VmHWM in /proc belongs to the new address space only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(csv_path: str, out_path: str, chunk_rows: int, schema_name: str, code_root: str) -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, honestly
    sys.path.insert(0, code_root)  # measure this checkout's simlink (or --ref's), not the installed one
    from simlink.agency.encode import encode_file

    schema = _schema(schema_name)
    cpu_started = time.process_time()
    summary = encode_file(csv_path, out_path, secret=b"k" * 32, agency="police", schema=schema,
                          overwrite=True, chunk_rows=chunk_rows)
    cpu = time.process_time() - cpu_started
    peak_kib = _peak_kib()
    import simlink

    print(json.dumps({"rows": summary.rows, "seconds": summary.seconds, "cpu_seconds": cpu,
                      "simlink": str(Path(simlink.__file__).resolve().parent),
                      "peak_rss_mib": peak_kib / 1024}))


def _run_child(csv_path: Path, out_path: Path, chunk_rows: int, schema_name: str, code_root: Path = ROOT) -> dict:
    load_before = os.getloadavg()[0]
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(csv_path), str(out_path), "--chunk-rows", str(chunk_rows),
         "--schemas", schema_name, "--code-root", str(code_root)],
        check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures.update(
        records_per_second=figures["rows"] / figures["seconds"],
        records_per_cpu_second=figures["rows"] / figures["cpu_seconds"],
        cpu_microseconds_per_record=1e6 * figures["cpu_seconds"] / figures["rows"],
        output_mb=out_path.stat().st_size / 1e6,
        load_average_1min_before=load_before,
        load_average_1min_after=os.getloadavg()[0],
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--schemas", default="default,unhardened",
                        help="comma-separated: default, unhardened, v1_default")
    parser.add_argument("--repeat", type=int, default=1, help="runs per schema (the best by CPU time is kept)")
    parser.add_argument("--ref", help="also time the simlink of this git commit (e.g. main), alternating "
                                           "with this checkout, so both see the same machine load")
    parser.add_argument("--out", default="encode_bench.json", help="result file name in benchmarks/results/")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--code-root", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.chunk_rows, args.schemas, args.code_root)
        return
    results: dict = {"rows": args.rows, "chunk_rows": args.chunk_rows,
                     "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
                     "pinning": "child process pinned to one core (sched_setaffinity)", "schemas": {}}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, out_path = Path(tmp) / "agency.csv", Path(tmp) / "encoded.parquet"
        started = time.perf_counter()
        generate(args.rows, csv_path)
        print(f"generated {args.rows:,} records in {time.perf_counter() - started:.1f} s "
              f"({csv_path.stat().st_size / 1e6:.0f} MB CSV)")
        sides = {"this checkout": ROOT}
        if args.ref:
            commit = subprocess.run(["git", "rev-parse", args.ref], cwd=ROOT, check=True, capture_output=True,
                                    text=True).stdout.strip()
            sides[f"{args.ref} ({commit[:10]})"] = Path(tmp) / "reference"
            sides[f"{args.ref} ({commit[:10]})"].mkdir()
            archive = subprocess.run(["git", "archive", commit, "simlink"], cwd=ROOT, check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(Path(tmp) / "reference")], input=archive.stdout, check=True)
            results["reference"] = {}
        for name in args.schemas.split(","):
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            for _ in range(args.repeat):
                for side, root in sides.items():  # alternate, so both sides see similar load
                    runs[side].append(_run_child(csv_path, out_path, args.chunk_rows, name, root))
            for side, side_runs in runs.items():
                best = min(side_runs, key=lambda r: r["cpu_seconds"])
                best["runs"] = [{k: round(r[k], 3) for k in ("seconds", "cpu_seconds", "load_average_1min_before")}
                                for r in side_runs]
                if side == "this checkout":
                    results["schemas"][name] = best
                else:
                    results["reference"][f"{name} @ {side}"] = best
                _print(f"{name} @ {side}", best)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2) + "\n")


def _print(label: str, best: dict) -> None:
    print(f"encode [{label}]: {best['rows']:,} records in {best['seconds']:.1f} s = "
          f"{best['records_per_second']:,.0f} records/s (wall); CPU {best['cpu_seconds']:.1f} s = "
          f"{best['cpu_microseconds_per_record']:.2f} us/record ({best['records_per_cpu_second']:,.0f} "
          f"records per CPU-second); peak RSS {best['peak_rss_mib']:,.0f} MiB; output "
          f"{best['output_mb']:.0f} MB; load {best['load_average_1min_before']:.2f} -> "
          f"{best['load_average_1min_after']:.2f}")


if __name__ == "__main__":
    main()
