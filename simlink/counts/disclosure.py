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
   above (people -> repeat people) withholds it as well; and a suppressed zero withholds the
   cells that are zero exactly when it is (contacts 0 <=> people 0, repeat contacts 0 <=>
   repeat people 0), so a published 0 never gives a hidden one away. Cells forced out by the
   caller (e.g. the release ledger, :mod:`simlink.counts.ledger`) enter this step too;
4. rounding — every remaining count is rounded to the nearest ``round_to``, or with
   OpenSAFELY's midpoint-6 rule.

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
#: How a share of nothing (0 of 0 contacts) is written: not suppressed, just undefined.
NOT_APPLICABLE = "n/a"
#: Rounding rules a policy may name.
ROUNDINGS: tuple[str, ...] = ("nearest", "midpoint6")


@dataclass(frozen=True)
class DisclosurePolicy:
    """The rules applied to a release. Defaults: NHS England / OpenSAFELY practice."""

    suppress_below: int = 8          # counts 1..7 withheld
    round_to: int = 5                # nearest 5
    rounding: str = "nearest"        # or "midpoint6" (OpenSAFELY; round_to is then unused)
    secondary: bool = True
    dp_epsilon: float | None = None  # None = no noise
    dp_seed: int | None = None       # set only in tests: seeded noise can be reproduced
    enabled: bool = True             # False only through DisclosurePolicy.unsafe()

    def __post_init__(self) -> None:
        if self.suppress_below < 1:
            raise SimlinkError("suppress_below must be at least 1 (1 = no suppression)")
        if self.round_to < 1:
            raise SimlinkError("round_to must be at least 1 (1 = no rounding)")
        if self.rounding not in ROUNDINGS:
            raise SimlinkError(f"rounding must be one of {', '.join(ROUNDINGS)}")
        if self.dp_epsilon is not None and not self.dp_epsilon > 0:
            raise SimlinkError("the differential-privacy epsilon must be positive")
        if self.dp_seed is not None and self.dp_epsilon is None:
            raise SimlinkError("a DP seed was given without an epsilon")

    @classmethod
    def unsafe(cls) -> "DisclosurePolicy":
        """No protection at all: exact counts, for the linkage unit's own checks only."""
        return cls(suppress_below=1, round_to=1, secondary=False, enabled=False)

    def rounding_text(self) -> str | None:
        """How published counts are rounded, or None when they are not."""
        if self.rounding == "midpoint6":
            return ("all other counts are rounded with OpenSAFELY's midpoint-6 rule "
                    "(1-6 -> 3, 7-12 -> 9, 13-18 -> 15, ...; 0 stays 0); totals may therefore "
                    "differ from the sum of their parts")
        if self.round_to > 1:
            return (f"all other counts are rounded to the nearest {self.round_to}; "
                    "totals may therefore differ from the sum of their parts")
        return None

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
                         "suppressed cell can be derived from totals, differences or "
                         "implied zeros in this release")
        if (text := self.rounding_text()) is not None:
            rules.append(text)
        rules.append("shares are computed from the protected counts only; a share of no "
                     "contacts is shown as n/a")
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
    forced: set[CellId] = field(default_factory=set)


def midpoint6(values: np.ndarray) -> np.ndarray:
    """OpenSAFELY midpoint-6: ``ceil(x/6)*6 - 3*(x != 0)``: 1-6 -> 3, 7-12 -> 9, ... and zero
    stays zero. Every value of a block publishes the same number (nearly unbiased: a block's
    mean is 0.5 above its published value)."""
    vals = np.asarray(values, dtype=np.int64)
    return (-(-vals // 6) * 6 - 3 * (vals != 0)).astype(np.int64)


def round_counts(values: np.ndarray, policy: "DisclosurePolicy") -> np.ndarray:
    """Round published counts under ``policy``'s rule."""
    if policy.rounding == "midpoint6":
        return midpoint6(values)
    return round_half_up(values, policy.round_to)


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


def laplace_error(scale: float) -> dict[str, float]:
    """Expected error of one discrete-Laplace cell, P(k) = (1-a)/(1+a) a^|k|, a = e^(-1/scale):
    mean absolute error 2a/(1-a^2), standard deviation sqrt(2a)/(1-a), and the smallest m with
    P(|noise| <= m) >= 0.95 (P(|noise| > m) = 2a^(m+1)/(1+a)). Before clamping and rounding."""
    a = float(np.exp(-1.0 / scale))
    m95 = max(0, int(np.ceil(np.log(0.025 * (1 + a)) / np.log(a))) - 1) if a > 0 else 0
    while m95 > 0 and 2 * a ** m95 / (1 + a) <= 0.05:  # guard against float edge cases
        m95 -= 1
    return {"mean_abs": 2 * a / (1 - a * a), "sd": float(np.sqrt(2 * a) / (1 - a)),
            "within_95": m95}


def _secondary(values: dict[CellId, int], suppressed: set[CellId], additive: Iterable[Additive],
               dominance: Iterable[tuple[CellId, CellId]], threshold: int,
               zero_links: Iterable[tuple[CellId, CellId]] = ()) -> set[CellId]:
    """Grow ``suppressed`` until no relation exposes a suppressed cell: additive relations,
    upper bounds (``dominance``: parent hidden -> child hidden) and zero links (a hidden 0
    hides its partner, which is 0 too and would give it away).

    A zero that a published zero implies (the repeat people under a published "people 0",
    the parts of a published total of 0, the partner of a published zero link) is *pinned*:
    hiding it protects nothing, so it is never picked, and a relation is judged on the cells
    that are really hidden; one left hidden by the upper-bound rule is published again at
    the end.
    """
    additive = list(additive)
    dominance = list(dominance)
    zero_pairs = [(a, b) for a, b in zero_links] + [(b, a) for a, b in zero_links]
    implied_by: dict[CellId, list[CellId]] = {}
    for parent, child in dominance:
        implied_by.setdefault(child, []).append(parent)
    for a, b in zero_pairs:
        implied_by.setdefault(b, []).append(a)
    for rel in additive:
        for part in rel.parts:
            implied_by.setdefault(part, []).append(rel.total)
    sup = set(suppressed)

    def pinned(c: CellId) -> bool:
        return values[c] == 0 and any(values[q] == 0 and q not in sup
                                      for q in implied_by.get(c, ()))

    changed = True
    while changed:
        changed = False
        for parent, child in dominance:
            if parent in sup and child not in sup:
                sup.add(child)
                changed = True
        for a, b in zero_pairs:
            if a in sup and b not in sup and values[a] == 0:
                sup.add(b)
                changed = True
        for rel in additive:
            members = (rel.total, *rel.parts)
            hidden = [c for c in members if c in sup and not pinned(c)]
            if not hidden or len(hidden) == len(members):
                continue
            hidden_parts = sum(values[c] for c in rel.parts if c in hidden)
            if len(hidden) >= 2 and (rel.total in hidden or hidden_parts >= threshold):
                continue
            open_parts = [c for c in rel.parts if c not in sup and not pinned(c)]
            if open_parts:
                # Smallest positive part first (hiding a zero adds nothing); zeros last.
                pick = min(open_parts, key=lambda c: (values[c] == 0, values[c]))
            elif rel.total not in sup and not pinned(rel.total):
                pick = rel.total
            else:
                continue  # nothing left that would hide anything
            sup.add(pick)
            changed = True
    # A hidden zero that published cells already pin (e.g. repeat people under a hidden people
    # count, when the service's published repeat people is 0) is published: hiding it would
    # protect nothing and only pretend to. Repeat: a newly published zero may pin another.
    unpinned = True
    while unpinned:
        unpinned = False
        for c in [c for c in sup if c not in suppressed and pinned(c)]:
            sup.discard(c)
            unpinned = True
    return sup


def protect(values: dict[CellId, int], policy: DisclosurePolicy, *,
            additive: Iterable[Additive] = (),
            dominance: Iterable[tuple[CellId, CellId]] = (),
            zero_links: Iterable[tuple[CellId, CellId]] = (),
            forced: Iterable[CellId] = ()) -> Protected:
    """Apply ``policy`` to the count cells ``values``; see the module docstring for the order.
    ``forced`` cells are withheld whatever their value (and protected like primary ones)."""
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
    forced_set = set(forced) - primary
    sup = primary | forced_set
    if policy.secondary and sup:
        sup = _secondary(noisy, sup, additive, dominance, policy.suppress_below, zero_links)
    rounded = dict(zip(ids, round_counts(raw, policy).tolist()))
    out = {c: (None if c in sup else int(rounded[c])) for c in ids}
    return Protected(out, primary=primary, secondary=sup - primary - forced_set,
                     noise_scale=scale, forced=forced_set)
