"""Statistical disclosure control: the one place where a count becomes publishable.

Order of operations for every count cell of a release (docs/counts.md explains why):

1. optional differential privacy — discrete Laplace (two-sided geometric) noise on the true
   count, the epsilon budget split evenly across all count cells; negatives clamped to 0;
2. primary suppression — counts from 1 to ``suppress_below - 1`` are withheld (zeros are
   published as 0: a zero says nobody is in the cell, which identifies no one);
3. secondary suppression — in every additive relation of the release (a total and its parts,
   across tables), a lone suppressed cell, or suppressed parts adding up to less than
   ``suppress_below``, forces the next smallest cell to be withheld too, so no suppressed cell
   can be recovered as "total minus the others"; a cell that bounds a suppressed cell from
   above (people -> repeat people) withholds it as well;
4. rounding — every remaining count is rounded to the nearest ``round_to``.

Cells are identified by ``(table, row, column)`` and carry plain integers; which cells add up
to which is declared by the caller (:mod:`simlink.counts.release`), not guessed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

import numpy as np

from simlink.errors import SimlinkError

CellId = Hashable
#: How suppressed cells are written in text outputs (ONS convention: [c] = confidential).
SUPPRESSED_MARK = "[c]"


@dataclass(frozen=True)
class DisclosurePolicy:
    """The rules applied to a release. Defaults: NHS England / OpenSAFELY practice."""

    suppress_below: int = 8          # counts 1..7 withheld
    round_to: int = 5                # nearest 5
    secondary: bool = True
    dp_epsilon: float | None = None  # None = no noise
    dp_seed: int | None = None       # set only in tests: seeded noise can be reproduced
    enabled: bool = True             # False only through DisclosurePolicy.unsafe()

    def __post_init__(self) -> None:
        if self.suppress_below < 1:
            raise SimlinkError("suppress_below must be at least 1 (1 = no suppression)")
        if self.round_to < 1:
            raise SimlinkError("round_to must be at least 1 (1 = no rounding)")
        if self.dp_epsilon is not None and not self.dp_epsilon > 0:
            raise SimlinkError("the differential-privacy epsilon must be positive")
        if self.dp_seed is not None and self.dp_epsilon is None:
            raise SimlinkError("a DP seed was given without an epsilon")

    @classmethod
    def unsafe(cls) -> "DisclosurePolicy":
        """No protection at all: exact counts, for the linkage unit's own checks only."""
        return cls(suppress_below=1, round_to=1, secondary=False, enabled=False)

    def describe(self) -> list[str]:
        """The statement printed with every release."""
        if not self.enabled:
            return ["UNPROTECTED: no disclosure control was applied. These are exact counts "
                    "and must not leave the linkage unit."]
        rules = []
        if self.dp_epsilon is not None:
            how = (f"seeded generator (seed {self.dp_seed}; reproducible: for testing only)"
                   if self.dp_seed is not None else "OpenDP's discrete Laplace sampler")
            rules.append(f"differential privacy: discrete Laplace noise added to every count "
                         f"before the rules below, total epsilon {self.dp_epsilon:g} split "
                         f"evenly across the count cells; {how}")
        if self.suppress_below > 1:
            rules.append(f"counts from 1 to {self.suppress_below - 1} are suppressed "
                         f"(shown as {SUPPRESSED_MARK}); zeros are shown as 0")
        if self.secondary and self.suppress_below > 1:
            rules.append("secondary suppression: further cells are suppressed so that no "
                         "suppressed cell can be derived from totals or differences in "
                         "this release")
        if self.round_to > 1:
            rules.append(f"all other counts are rounded to the nearest {self.round_to}; "
                         "totals may therefore differ from the sum of their parts")
        rules.append("shares are computed from the protected counts only")
        return rules


@dataclass(frozen=True)
class Additive:
    """``total`` equals the sum of ``parts`` (before protection)."""

    total: CellId
    parts: tuple[CellId, ...]


@dataclass
class Protected:
    """Published values (None = suppressed) and what was done to get them."""

    values: dict[CellId, int | None]
    primary: set[CellId] = field(default_factory=set)
    secondary: set[CellId] = field(default_factory=set)
    noise_scale: float | None = None


def round_half_up(values: np.ndarray, base: int) -> np.ndarray:
    """Round non-negative integers to the nearest multiple of ``base`` (halves go up)."""
    if base <= 1:
        return values.astype(np.int64)
    return (np.floor(values / base + 0.5) * base).astype(np.int64)


def discrete_laplace(values: Sequence[int], scale: float, seed: int | None) -> np.ndarray:
    """Add discrete Laplace noise, P(k) proportional to exp(-|k|/scale), to integer counts.

    With a seed: the difference of two i.i.d. geometric variables with success probability
    1 - exp(-1/scale), drawn from numpy's PCG64 — reproducible, for tests. Without: OpenDP's
    sampler (cryptographically secure, exact), which is what a real release should use.
    """
    vals = np.asarray(values, dtype=np.int64)
    if seed is not None:
        rng = np.random.default_rng(seed)
        p = -np.expm1(-1.0 / scale)
        noise = rng.geometric(p, size=vals.size) - rng.geometric(p, size=vals.size)
        return vals + noise
    try:
        import opendp.prelude as dp
    except ImportError:  # pragma: no cover - depends on the install
        raise SimlinkError("differential privacy needs OpenDP: pip install 'simlink[dp]' "
                           "(or give a seed, for testing only)") from None
    dp.enable_features("contrib")
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)),
                             dp.l1_distance(T=int), scale=float(scale))
    return np.asarray(meas([int(v) for v in vals]), dtype=np.int64)


def dp_scale(policy: DisclosurePolicy, n_cells: int) -> float:
    """Per-cell noise scale: each cell gets epsilon/n_cells, sensitivity 1."""
    assert policy.dp_epsilon is not None
    return n_cells / policy.dp_epsilon


def _secondary(values: dict[CellId, int], suppressed: set[CellId], additive: Iterable[Additive],
               dominance: Iterable[tuple[CellId, CellId]], threshold: int) -> set[CellId]:
    """Grow ``suppressed`` until no additive relation exposes a suppressed cell."""
    additive = list(additive)
    dominance = list(dominance)
    sup = set(suppressed)
    changed = True
    while changed:
        changed = False
        for parent, child in dominance:
            if parent in sup and child not in sup:
                sup.add(child)
                changed = True
        for rel in additive:
            members = (rel.total, *rel.parts)
            hidden = [c for c in members if c in sup]
            if not hidden or len(hidden) == len(members):
                continue
            hidden_parts = sum(values[c] for c in rel.parts if c in sup)
            if len(hidden) >= 2 and (rel.total in sup or hidden_parts >= threshold):
                continue
            open_parts = [c for c in rel.parts if c not in sup]
            if open_parts:
                # Smallest positive part first (hiding a zero adds nothing); zeros last.
                pick = min(open_parts, key=lambda c: (values[c] == 0, values[c]))
            else:
                pick = rel.total
            sup.add(pick)
            changed = True
    return sup


def protect(values: dict[CellId, int], policy: DisclosurePolicy, *,
            additive: Iterable[Additive] = (),
            dominance: Iterable[tuple[CellId, CellId]] = ()) -> Protected:
    """Apply ``policy`` to the count cells ``values``; see the module docstring for the order."""
    ids = list(values)
    if not policy.enabled:
        return Protected({c: int(values[c]) for c in ids})
    raw = np.array([int(values[c]) for c in ids], dtype=np.int64)
    scale = None
    if policy.dp_epsilon is not None and ids:
        scale = dp_scale(policy, len(ids))
        raw = np.maximum(discrete_laplace(raw, scale, policy.dp_seed), 0)
    noisy = dict(zip(ids, raw.tolist()))
    primary = {c for c in ids if 1 <= noisy[c] < policy.suppress_below}
    sup = primary
    if policy.secondary and primary:
        sup = _secondary(noisy, primary, additive, dominance, policy.suppress_below)
    rounded = dict(zip(ids, round_half_up(raw, policy.round_to).tolist()))
    out = {c: (None if c in sup else int(rounded[c])) for c in ids}
    return Protected(out, primary=primary, secondary=sup - primary, noise_scale=scale)
