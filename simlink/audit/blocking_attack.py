"""Frequency attack on keyed blocking tokens.

A blocking token is a keyed hash of derived values (e.g. soundex of given and family
name), so equal derivations give equal tokens and the token-frequency table mirrors the
distribution of the derivation. For keys built only from name derivations the attacker
computes that distribution from the reference (parts assumed independent), pairs tokens and
derived values by frequency rank, and guesses for each part the most common reference name
with that derivation. Keys mixing in a date or postcode part are diluted by it; for them
the audit reports how concentrated the tokens are (largest share of records on one token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlink.agency.blocking import DERIVE
from simlink.schema import BlockingKey, Schema

MAX_COMBINATIONS = 20000


@dataclass(frozen=True)
class TokenGuess:
    """Per record guessed name per name field (None = no guess)."""

    key: str
    guesses: dict[str, list[str | None]]
    largest_share: float  # share of records that carry the most common token


def _part_distribution(schema: Schema, part: str, reference: dict[str, float]) -> tuple[dict[str, float], dict[str, str]]:
    """Derived value → probability, and derived value → most common name having it."""
    field_name, derivation = part.split(":")
    derive = DERIVE[(schema.field(field_name).normaliser, derivation)]
    probability: dict[str, float] = {}
    exemplar: dict[str, str] = {}
    for name, p in reference.items():  # reference is sorted by frequency, most common first
        value = derive(name)
        if not value:
            continue
        probability[value] = probability.get(value, 0.0) + p
        exemplar.setdefault(value, name)
    return probability, exemplar


def name_only(schema: Schema, key: BlockingKey) -> bool:
    return all(schema.field(p.split(":")[0]).normaliser == "person_name" for p in key.parts)


def blocking_attack(schema: Schema, key: BlockingKey, tokens: np.ndarray,
                    references: dict[str, dict[str, float]]) -> TokenGuess:
    """Align token frequencies with the reference distribution of the key's derivations."""
    n = len(tokens)
    present = tokens != 0
    values, inverse, counts = np.unique(tokens[present], return_inverse=True, return_counts=True)
    largest = float(counts.max() / n) if len(counts) else 0.0
    fields = [p.split(":")[0] for p in key.parts]
    guesses: dict[str, list[str | None]] = {f: [None] * n for f in set(fields)}
    if not name_only(schema, key) or not all(references.get(f) for f in fields):
        return TokenGuess(key.name, guesses, largest)
    parts = [_part_distribution(schema, part, references[f]) for part, f in zip(key.parts, fields)]
    combos: list[tuple[float, tuple[str, ...]]] = [(1.0, ())]
    for probability, _ in parts:  # product distribution, pruned to the most likely combinations
        top = sorted(probability.items(), key=lambda kv: -kv[1])[:MAX_COMBINATIONS]
        combos = sorted(((p * q, c + (v,)) for p, c in combos for v, q in top), key=lambda t: -t[0])[:MAX_COMBINATIONS]
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= 2][: len(combos)]
    token_combo = np.full(len(values), -1, dtype=np.int64)
    token_combo[order] = np.arange(len(order))
    row_combo = np.full(n, -1, dtype=np.int64)
    row_combo[present] = token_combo[inverse.reshape(-1)]
    for j, (f, (_, exemplar)) in enumerate(zip(fields, parts)):
        names = [exemplar[c[j]] for _, c in combos[: len(order)]]
        column = guesses[f]
        for r in np.flatnonzero(row_combo >= 0):
            column[r] = names[row_combo[r]]
    return TokenGuess(key.name, guesses, largest)
