"""Built-in attack audit: run known attacks on an encoded file and report the risk.

The attacker holds one encoded file (with its public manifest) and a public list of name
frequencies, not the key. See docs/threat-model.md for the attacks and their limits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from simlink.audit.blocking_attack import blocking_attack
from simlink.audit.encoded import EncodedFile, read_encoded
from simlink.audit.frequency import frequency_attack
from simlink.audit.graph import graph_attack
from simlink.audit.pattern import pattern_attack
from simlink.audit.reference import NAME_FIELDS, Reference, read_reference
from simlink.audit.report import BAR, AttackResult, AuditReport
from simlink.errors import InputError
from simlink.agency.normalise import NORMALISERS

INSIDER_SEEDS = 50  # distinct names the insider attacker knows

__all__ = ["audit_file", "audit_encoded", "read_reference", "AuditReport", "BAR"]


def _truth_names(encoded: EncodedFile, truth: str | Path | pa.Table) -> dict[str, list[str | None]]:
    """Normalised true names per record of the encoded file, matched on record_id."""
    schema = encoded.schema
    columns = [schema.record.record_id] + [schema.field(f).column for f in NAME_FIELDS if _has(encoded, f)]
    if isinstance(truth, pa.Table):
        table = truth.select(columns)
    else:
        from simlink.agency.inputs import iter_batches

        table = pa.concat_tables([b.table for b in iter_batches(truth, columns)])
    ids = [str(v).strip() for v in table.column(schema.record.record_id).to_pylist()]
    position = {rid: i for i, rid in enumerate(ids)}
    order = [position.get(rid, -1) for rid in encoded.table.column("record_id").to_pylist()]
    if any(i < 0 for i in order):
        raise InputError("truth file does not hold every record_id of the encoded file", path=str(truth))
    out = {}
    for f in NAME_FIELDS:
        if _has(encoded, f):
            values = NORMALISERS["person_name"](table.column(schema.field(f).column).combine_chunks()).values.to_pylist()
            out[f] = [values[i] for i in order]
    return out


def _has(encoded: EncodedFile, field_name: str) -> bool:
    return any(f.name == field_name for f in encoded.schema.fields)


def _score(guesses: list[str | None], truth: list[str | None] | None) -> tuple[float, float | None, np.ndarray]:
    n = max(len(guesses), 1)
    guessed = sum(g is not None for g in guesses) / n
    if truth is None:
        return guessed, None, np.zeros(len(guesses), bool)
    right = np.array([g is not None and g == t for g, t in zip(guesses, truth)], dtype=bool)
    return guessed, float(right.mean()) if len(right) else 0.0, right


def _insider(filters, names: dict[str, float], truth: list[str | None]) -> list[str | None]:
    """Pattern attack seeded with known plaintext: the attacker knows the names of a few
    people in the file (INSIDER_SEEDS distinct filters, at random). Their own records are
    not counted as re-identified."""
    true_name: dict[int, str | None] = {}
    for row, i in enumerate(filters.inverse.tolist()):
        if i >= 0:
            true_name.setdefault(i, truth[row])
    rng = np.random.default_rng(0)
    n_seeds = min(INSIDER_SEEDS, len(filters.counts) // 4)
    picked = set(rng.choice(len(filters.counts), size=n_seeds, replace=False).tolist()) if n_seeds else set()
    seeds = [true_name.get(i) if i in picked else None for i in range(len(filters.counts))]
    guesses, _ = pattern_attack(filters, names, seeds)
    return [guesses[i] if i >= 0 and i not in picked else None for i in filters.inverse.tolist()]


def audit_encoded(encoded: EncodedFile, reference: Reference, truth: str | Path | pa.Table | None = None) -> AuditReport:
    """Run every attack on a loaded encoded file."""
    schema = encoded.schema
    report = AuditReport(encoded.rows, reference.source, schema.name)
    truth_names = _truth_names(encoded, truth) if truth is not None else {}
    hits: dict[str, np.ndarray] = {}

    def record(attack: str, target: str, field_name: str, guesses: list[str | None]) -> None:
        guessed, rate, right = _score(guesses, truth_names.get(field_name) if truth is not None else None)
        report.results.append(AttackResult(attack, target, guessed, rate))
        if truth is not None:
            hits[attack] = hits.get(attack, np.zeros(encoded.rows, bool)) | right
            per_field = report.correct.setdefault(field_name, {})
            per_field[attack] = per_field.get(attack, np.zeros(encoded.rows, bool)) | right

    for field_name in NAME_FIELDS:
        if not _has(encoded, field_name) or not reference.names(field_name):
            continue
        filters = encoded.filters(field_name)
        names = reference.names(field_name)
        freq, _ = frequency_attack(filters, names)
        pattern, _ = pattern_attack(filters, names, freq)
        graph = graph_attack(filters, names).guesses
        for attack, per_filter in (("frequency", freq), ("pattern", pattern), ("graph", graph)):
            record(attack, field_name, field_name, [per_filter[i] if i >= 0 else None for i in filters.inverse])
        if truth is not None:
            record("insider", field_name, field_name, _insider(filters, names, truth_names[field_name]))
    references = {f: reference.names(f) for f in NAME_FIELDS}
    for key in schema.blocking:
        result = blocking_attack(schema, key, encoded.tokens(key.name), references)
        report.token_concentration[key.name] = result.largest_share
        for field_name, guesses in result.guesses.items():
            if field_name in NAME_FIELDS and any(g is not None for g in guesses):
                record("blocking", f"blk__{key.name}:{field_name}", field_name, guesses)
    report.any_name = {attack: float(h.mean()) for attack, h in hits.items()}
    if truth is not None:  # what guessing the commonest reference names, without the file, gets
        blind = np.zeros(encoded.rows, bool)
        for field_name, names in truth_names.items():
            top = next(iter(reference.names(field_name)), None)
            blind |= np.array([t is not None and t == top for t in names], dtype=bool)
        report.blind_guess = float(blind.mean())
    if any(f.hardening.salt_derivation for f in schema.fields):
        report.notes.append("salted fields: an attacker who can split records by the salt value "
                            "(e.g. from the date-of-birth filter) can attack each group; see docs/threat-model.md")
    return report


def audit_file(path: str | Path, reference: str | Path | Reference | None = None,
               truth: str | Path | pa.Table | None = None) -> AuditReport:
    """Audit an encoded file; ``truth`` is the agency's own input, to score the guesses."""
    ref = reference if isinstance(reference, Reference) else read_reference(reference)
    return audit_encoded(read_encoded(path), ref, truth)
