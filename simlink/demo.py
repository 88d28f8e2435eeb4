"""The whole pipeline on synthetic agencies, in one call: what ``simlink demo`` runs.

Generates agencies with a known answer, makes a secret, encodes each agency as that agency
would, links the encodings as the linkage unit would (without the secret), releases the
protected counts, and measures linkage quality against the synthetic truth. Each step uses
the same public API a real deployment uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from simlink import outputs
from simlink.counts import Release, compute_measures, measures_from_db, release, write_report
from simlink.agency.encode import encode_file
from simlink.errors import OutputExistsError
from simlink.evaluate import LinkageQuality, evaluate_files
from simlink.agency.keys import generate_key_file, read_key_file
from simlink.link import LinkResult, link_files
from simlink.schema import load_schema
from simlink.synth import SynthConfig, truth_events, write_synth
from simlink.synth.profiles import AGENCIES

HEADLINE = (("totals", "people"), ("totals", "repeat_people"))


@dataclass
class DemoResult:
    out_dir: Path
    link: LinkResult
    quality: LinkageQuality
    release: Release
    count_errors: dict[str, float]
    report: Path
    seconds: dict[str, float] = field(default_factory=dict)


def _headline_counts(measures) -> dict[str, int]:
    """People, people seen by 2+ services and repeat-contact people (internal, for errors only)."""
    totals = measures["totals"].set_index("measure")["count"]
    used = measures["services_used"]
    return {
        "people": int(totals["people"]),
        "people_2plus_services": int(used.loc[used["n_services"] >= 2, "people"].sum()),
        "repeat_people": int(totals["repeat_people"]),
    }


def run_demo(out_dir: str | Path, *, people: int = 3000, seed: int = 2026, errors: str = "medium",
             overwrite: bool = False, say: Callable[[str], None] = print) -> DemoResult:
    """Run synth -> keygen -> encode (x4) -> link -> counts -> evaluate into ``out_dir``."""
    out = Path(out_dir)
    outputs.check_creatable_folder(out, "demo folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError("demo folder is not empty (use --overwrite to replace it)", path=out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    say(f"1/5 synthesising {people:,} people across {len(AGENCIES)} agencies ({errors} errors)")
    synth_dir = out / "agencies"
    write_synth(SynthConfig(people=people, seed=seed, errors=errors), synth_dir, overwrite=True)
    seconds["synth"] = time.perf_counter() - started

    say("2/5 encoding each agency with the shared secret (as each agency would, offline)")
    key_path = out / "shared-secret.key"
    if key_path.exists():
        key_path.unlink()
    secret = read_key_file(generate_key_file(key_path))
    schema = load_schema()
    encoded_dir = out / "encoded"
    encoded_dir.mkdir(exist_ok=True)
    encoded = []
    for agency in AGENCIES:
        target = encoded_dir / f"{agency}.parquet"
        summary = encode_file(synth_dir / f"{agency}.csv", target, secret=secret, agency=agency,
                              schema=schema, overwrite=True)
        say(f"    {summary.line()}")
        encoded.append(target)
    seconds["encode"] = time.perf_counter() - started - sum(seconds.values())

    say("3/5 linking the encodings (the linkage unit never sees the secret)")
    linkage = out / "linkage.duckdb"
    link_result = link_files(encoded, linkage, overwrite=True)
    say(f"    {link_result.line()}")
    seconds["link"] = time.perf_counter() - started - sum(seconds.values())

    say("4/5 counting linked people, with disclosure control")
    protected = release(linkage)
    report = write_report(protected, out / "report")
    seconds["counts"] = time.perf_counter() - started - sum(seconds.values())

    say("5/5 measuring linkage quality against the synthetic truth")
    quality = evaluate_files(linkage, synth_dir / "truth.csv")
    linked = _headline_counts(measures_from_db(linkage))
    true = _headline_counts(compute_measures(truth_events(synth_dir)))
    count_errors = {k: (linked[k] - true[k]) / true[k] if true[k] else 0.0 for k in true}
    seconds["evaluate"] = time.perf_counter() - started - sum(seconds.values())
    return DemoResult(out, link_result, quality, protected, count_errors, report, seconds)


def quality_lines(result: DemoResult) -> list[str]:
    q = result.quality
    lines = [
        f"pairwise precision {q.pair_precision:.4f}  recall {q.pair_recall:.4f}  F1 {q.pair_f1:.4f}",
        f"B-cubed    precision {q.bcubed_precision:.4f}  recall {q.bcubed_recall:.4f}  F1 {q.bcubed_f1:.4f}",
        f"persons found {q.predicted_persons:,} (true {q.true_persons:,}) from {q.records:,} contacts",
    ]
    errors = ", ".join(f"{k} {v:+.1%}" for k, v in result.count_errors.items())
    lines.append(f"relative error of linked counts vs truth (before disclosure control): {errors}")
    return lines
