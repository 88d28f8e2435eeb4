"""The attacker's model of the public encoding: which tokens a name gives, how many bits.

The schema travels in every encoded file's manifest, so an attacker knows the tokeniser,
filter length, hash count and hardening settings; only the key is secret.
"""

from __future__ import annotations

import numpy as np

from simlink.schema import FieldSpec
from simlink.agency.tokens import tokenise

TokenKey = tuple[int, object]


def name_tokens(spec: FieldSpec, names: list[str]) -> list[set[TokenKey]]:
    """The set of (tag, code) tokens of each name, as the encoder would make them."""
    out: list[set[TokenKey]] = [set() for _ in names]
    for group in tokenise(names, spec.tokens):
        strings = group.strings
        for row, tag, code in zip(group.value_index.tolist(), group.tag.tolist(), group.code.tolist()):
            out[row].add((tag, strings[code] if strings else code))
    return out


def flip_probability(spec: FieldSpec) -> float:
    eps = spec.hardening.blip_epsilon
    return 1.0 / (1.0 + np.exp(eps)) if eps > 0 else 0.0


def expected_popcount(spec: FieldSpec, n_tokens: np.ndarray) -> np.ndarray | None:
    """Expected filter weight for names with ``n_tokens`` tokens; None if weight says nothing."""
    h = spec.hardening
    if h.balance:
        return None
    m = float(spec.bits)
    share = 1.0 - np.exp(-spec.hashes * np.asarray(n_tokens, dtype=float) / m)
    f = flip_probability(spec)
    share = share * (1 - f) + (1 - share) * f
    if h.xor_fold:
        return (m / 2) * 2 * share * (1 - share)
    return m * share
