"""The format-2 training before and after the scoped-m / random-pair-u changes, at scale.

Synthetic medium-error data (``simlink synth --people N --seed 3``), encoded once, linked
twice with the default decision rule: ``TrainOptions(scoped_m=False, random_u=False)`` (Splink's
EM passes and random-sampling u, as before) and the defaults. Prints pairwise and B-cubed
quality and the load; results are copied into benchmarks/results/model_scale.md by hand.

    python benchmarks/model_scale.py 100000        # ~306k contacts
    python benchmarks/model_scale.py 330000        # ~1M contacts
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from simlink.agency.encode import encode_file
from simlink.agency.keys import generate_key_file, read_key_file
from simlink.evaluate import evaluate_files
from simlink.link import link_files
from simlink.link.model import TrainOptions
from simlink.schema import load_schema
from simlink.synth import SynthConfig, write_synth

AGENCIES = ["police", "ambulance", "ed", "mental_health"]


def main() -> None:
    people = int(sys.argv[1])
    folder = Path(sys.argv[2] if len(sys.argv) > 2 else f"/tmp/simlink-bench/model-scale-{people}")
    if not (folder / "truth.csv").exists():
        write_synth(SynthConfig(people=people, seed=3, errors="medium"), folder, overwrite=True)
    key = folder / "key.hex"
    if not key.exists():
        generate_key_file(key)
    encoded = []
    for agency in AGENCIES:
        out = folder / f"{agency}.parquet"
        if not out.exists():
            encode_file(folder / f"{agency}.csv", out, secret=read_key_file(key), agency=agency,
                        schema=load_schema(None), strict=False)
        encoded.append(out)
    for label, options in (("before", TrainOptions(scoped_m=False, random_u=False)), ("after", TrainOptions())):
        started = time.time()
        result = link_files(encoded, folder / f"{label}.duckdb", overwrite=True, charts=False, train_options=options)
        q = evaluate_files(folder / f"{label}.duckdb", folder / "truth.csv")
        print(f"{label}: {result.events} contacts, {result.distinct_encodings} encodings, F1 {q.pair_f1:.4f} "
              f"P {q.pair_precision:.4f} R {q.pair_recall:.4f} B-cubed {q.bcubed_f1:.4f}, persons {result.persons} "
              f"(true {q.true_persons}), {time.time() - started:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
