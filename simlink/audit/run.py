"""The linkage-unit audit end to end: load every file, attack, score, give the verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simlink.audit.align import AlignOptions
from simlink.audit.encoded import Corpus, read_corpus
from simlink.audit.linkage_unit import Attacker
from simlink.audit.reference import Reference
from simlink.audit.truth import Truth, proxy_persons, read_persons, read_truth_inputs
from simlink.audit.verdict import MIN_RECORDS, MIN_SUBSET, Subsets, Verdict, baselines, census, correct, list_guess


def audit_corpus(corpus: Corpus, reference: Reference, truth: Truth | None, *, persons: np.ndarray | None = None,
                 truth_persons: np.ndarray | None = None, assume_year: bool = True,
                 options: AlignOptions = AlignOptions(), extra: dict[str, dict[str, np.ndarray]] | None = None,
                 ) -> Verdict:
    """Run every linkage-unit attack on ``corpus`` and score it against ``truth``.

    ``persons``: the attacker's own linkage (default: ``truth_persons``, a perfect linkage,
    else distinct date-of-birth/postcode/sex encodings). ``truth_persons`` pick the people
    with >= 5 contacts. ``extra``: other attacks' results (field -> attack -> per record:
    named right), e.g. today's single-file attacks, scored alongside.
    """
    verdict = Verdict(corpus.rows, len(corpus.paths), reference.source, corpus.schema.name, assume_year)
    doc, in_groups, cross = census(corpus.record_hash(), corpus.file)
    verdict.census = doc
    if truth is None:
        return verdict
    if persons is None:
        persons = truth_persons if truth_persons is not None else proxy_persons(corpus)
        verdict.notes.append("attacker's persons: " + ("the true persons (a perfect linkage: stronger than a real "
                             "attacker)" if truth_persons is not None else
                             "distinct date-of-birth/postcode/sex encodings (no linkage given)"))
    year = truth.year if assume_year else np.full(corpus.rows, -1, np.int64)
    if assume_year:
        verdict.notes.append("the attacker is assumed to know each record's birth year (lists by year of birth)")
    attacker = Attacker(corpus, persons, year, reference, options)
    runs = attacker.run()
    verdict.structure = attacker.structure
    subsets = Subsets.of(truth_persons if truth_persons is not None else persons).masks
    noise_persons = truth_persons if truth_persons is not None else persons
    best: dict[str, dict[str, tuple[float, np.ndarray]]] = {}
    fallback = {f: list_guess(reference, f, year) for f in {run.field for run in runs}}
    for run in runs:
        # The attacker names every record: its structure's guess where it has one, else what the
        # list alone suggests for the record's birth year. An attack that names a few records
        # well is then measured by what it adds to the blind guess, not hidden by the rest.
        named_only = correct(run.guesses, truth.names[run.field])
        right = correct(np.where(pd.isna(run.guesses), fallback[run.field], run.guesses), truth.names[run.field])
        rate = float(right.mean()) if len(right) else 0.0
        verdict.details.append({"attack": run.attack, "field": run.field, "rate": rate,
                                "rate_named_only": float(named_only.mean()) if len(named_only) else 0.0,
                                **run.detail})
        current = best.setdefault(run.field, {}).get(run.attack)
        if current is None or rate > current[0]:  # the attacker's best variant (cut, copy, tolerance)
            best[run.field][run.attack] = (rate, right)
    for field_name, attacks in (extra or {}).items():
        for attack, right in attacks.items():
            best.setdefault(field_name, {})[attack] = (float(right.mean()), right)
    named_any = np.zeros(corpus.rows, bool)
    for field_name, attacks in best.items():
        verdict.rates[field_name], verdict.baselines[field_name], verdict.strongest[field_name] = {}, {}, {}
        top = max(attacks, key=lambda a: attacks[a][0])
        named_any |= attacks[top][1]
        for subset, mask in subsets.items():
            if mask.sum() < (MIN_SUBSET if subset != "all" else 1):
                verdict.notes.append(f"{field_name} [{subset}]: {int(mask.sum())} records, too few to judge")
                continue
            rates = {attack: float(right[mask].mean()) for attack, (_, right) in attacks.items()}
            verdict.rates[field_name][subset] = {"records": int(mask.sum()), **rates}
            verdict.baselines[field_name][subset] = baselines(truth.names[field_name], truth.year, reference,
                                                              field_name, mask)
            strongest = max(rates, key=rates.get)
            verdict.strongest[field_name][subset] = (strongest, rates[strongest])
            verdict.noise.setdefault(field_name, {})[subset] = clustered_se(attacks[strongest][1][mask], noise_persons[mask])
    verdict.census["named_in_groups"] = float(named_any[in_groups].mean()) if in_groups.any() else 0.0
    verdict.census["named_in_other_file"] = float(named_any[cross].mean()) if cross.any() else 0.0
    return verdict


def file_attacks(paths: list[str | Path], reference: Reference, truth_inputs: list[str | Path] | None,
                 ) -> tuple[dict[str, dict[str, np.ndarray]], list[dict], list[str]]:
    """Today's single-file attacks (frequency, pattern, graph, insider, blocking) on each file,
    per record in corpus order, prefixed ``file:``; and each file's report."""
    from simlink.audit import audit_encoded
    from simlink.audit.encoded import read_encoded

    merged: dict[str, dict[str, list[np.ndarray]]] = {}
    reports: list[dict] = []
    verdict_lines: list[str] = []
    for i, path in enumerate(paths):
        encoded = read_encoded(path)
        report = audit_encoded(encoded, reference, truth_inputs[i] if truth_inputs else None)
        reports.append({"file": str(path), **report.to_dict()})
        text = [line for line in report.text().splitlines() if not line.startswith(("risk:", "      "))]
        verdict_lines.append(f"single-file attacks (today's), {path}:")
        verdict_lines.extend("  " + line for line in text[1:])
        for field_name, attacks in report.correct.items():
            for attack, right in attacks.items():
                slots = merged.setdefault(field_name, {}).setdefault(f"file:{attack}", [None] * len(paths))
                slots[i] = right
    out: dict[str, dict[str, np.ndarray]] = {}
    rows = [read_encoded(p).rows for p in paths] if merged else []
    for field_name, attacks in merged.items():
        out[field_name] = {a: np.concatenate([s if s is not None else np.zeros(n, bool) for s, n in zip(slots, rows)])
                           for a, slots in attacks.items()}
    return out, reports, verdict_lines


def audit_paths(paths: list[str | Path], reference: Reference, truth_inputs: list[str | Path] | None = None,
                persons: str | Path | None = None, truth_persons: str | Path | None = None,
                assume_year: bool = True, single_file: bool = True) -> Verdict:
    """``simlink audit`` as a function: every file at once, plus today's per-file attacks."""
    corpus = read_corpus(list(paths))
    truth = read_truth_inputs(corpus, list(truth_inputs)) if truth_inputs else None
    linked = read_persons(corpus, persons) if persons else None
    true_persons = read_persons(corpus, truth_persons) if truth_persons else None
    extra, reports, lines = file_attacks(list(paths), reference, truth_inputs) if single_file and corpus.rows >= MIN_RECORDS \
        else ({}, [], [])
    verdict = audit_corpus(corpus, reference, truth, persons=linked, truth_persons=true_persons,
                           assume_year=assume_year, extra=extra)
    verdict.structure["single_file_reports"] = reports
    verdict.preamble = lines
    return verdict


def clustered_se(right: np.ndarray, persons: np.ndarray) -> float:
    """Standard error of a share of records named, with a person's records counted together:
    one person with 200 contacts named by luck moves the rate as 200 records would, so on a
    small population the rate's noise is set by how contacts are spread over people."""
    n = len(right)
    if n == 0:
        return 0.0
    key = np.where(persons >= 0, persons, -1 - np.arange(n))
    frame = pd.DataFrame({"p": key, "r": right.astype(float)}).groupby("p")["r"].agg(["sum", "size"])
    rate = right.mean()
    return float(np.sqrt(((frame["sum"] - rate * frame["size"]) ** 2).sum()) / n)
