"""Time and peak memory of `simlink synth` for 100k and 1M people.

Each size runs in a fresh subprocess so that peak RSS (VmHWM, benchmarks/rss.py) belongs
to that run alone. Writes benchmarks/results/synth_bench.json.

    python benchmarks/synth_bench.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
from benchmarks.rss import peak_rss_mb
from simlink.synth import SynthConfig, write_synth
people, out = int(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
summary = write_synth(SynthConfig(people=people, seed=1), out)
seconds = time.perf_counter() - started
peak_mb = peak_rss_mb()
print(json.dumps({"people": people, "records": sum(summary.records.values()), "by_agency": summary.records,
                  "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 0)}))
"""


def run(people: int, root: Path) -> dict:
    out = root / f"synth_{people}"
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo))
    done = subprocess.run([sys.executable, "-c", CHILD, str(people), str(out)], capture_output=True,
                          text=True, check=True, env=env, cwd=repo)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["output_mb"] = round(sum(p.stat().st_size for p in out.glob("*.csv")) / 2**20, 1)
    result["records_per_second"] = round(result["records"] / result["seconds"])
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for people in args.sizes:
            result = run(people, Path(tmp))
            print(json.dumps(result))
            results.append(result)
    report = {"benchmark": "synth", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "results": results}
    target = Path(__file__).resolve().parent / "results" / "synth_bench.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
