"""Disclosure control: suppression, rounding, secondary suppression under attack, DP noise."""

from __future__ import annotations

import importlib
import io
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from simlink.counts import DisclosurePolicy, compute_measures, discrete_laplace, protect_measures
from simlink.counts.disclosure import Additive, protect, round_half_up
from simlink.counts.measures import RepeatRule
from simlink.errors import SimlinkError

SERVICES = ["ambulance", "ed", "mental_health", "police"]


def synthetic_events(seed: int, n_common: int = 300) -> pd.DataFrame:
    """Many one-service people plus a few in rare combinations: plenty of small cells."""
    rng = np.random.default_rng(seed)
    rows, key = [], 0
    plan = [((s,), n_common + int(rng.integers(0, 40))) for s in SERVICES]
    for k in (2, 3, 4):
        for combo in itertools.combinations(SERVICES, k):
            plan.append((combo, int(rng.integers(0, 12))))  # rare: 0..11 people
    plan[4 + 6] = (plan[4 + 6][0], 0)  # always at least one true zero (a 3-service mix)
    for combo, n_people in plan:
        for _ in range(n_people):
            key += 1
            n = len(combo) + int(rng.geometric(0.35)) - 1
            services = list(combo) + list(rng.choice(combo, size=n - len(combo)))
            start = np.datetime64("2023-01-01") + int(rng.integers(0, 700))
            for svc in services:
                day = start + int(rng.exponential(40))
                rows.append(("x", f"r{len(rows)}", svc, day, key))
    df = pd.DataFrame(rows, columns=["agency", "record_id", "service", "contact_date",
                                     "person_key"])
    df["contact_date"] = pd.to_datetime(df["contact_date"]).dt.date
    return df


def protected_release(seed: int, policy: DisclosurePolicy):
    raw = compute_measures(synthetic_events(seed))
    return raw, protect_measures(raw, policy, RepeatRule())


def published_counts(rel) -> dict[tuple, float | None]:
    out = {}
    dims = {"totals": "measure", "by_service": "service", "services_used": "n_services",
            "combinations": "combination", "contact_bands": "band", "monthly": "month",
            "monthly_by_service": "month"}
    for name, df in rel.tables.items():
        for rec in df.to_dict("records"):
            for col, v in rec.items():
                if col in (dims[name], "n_services", "repeat_contact_share"):
                    continue
                out[(name, str(rec[dims[name]]), col)] = None if pd.isna(v) else int(v)
    return out


# ---------------------------------------------------------------------------- the attacker
def attacker_relations(rel) -> list[tuple[tuple, list[tuple[tuple, int]]]]:
    """Every linear identity an analyst can write down from the release's documentation,
    written here independently of simlink's own list: total = sum(coef * part)."""
    t = rel.tables
    cell = lambda table, row, col: (table, str(row), col)  # noqa: E731
    tot = lambda m: cell("totals", m, "count")  # noqa: E731
    rels = []
    col = lambda table, key, c, rows: [(cell(table, r, c), 1) for r in rows]  # noqa: E731
    services, bands = list(t["by_service"]["service"]), list(t["contact_bands"]["band"])
    months, ks = list(t["monthly"]["month"]), list(t["services_used"]["n_services"])
    combos = list(t["combinations"]["combination"])
    rels.append((tot("contacts"), col("by_service", "service", "contacts", services)))
    rels.append((tot("contacts"), col("contact_bands", "band", "contacts", bands)))
    rels.append((tot("contacts"), col("monthly", "month", "contacts", months)))
    rels.append((tot("people"), col("contact_bands", "band", "people", bands)))
    rels.append((tot("repeat_contacts"), col("by_service", "service", "repeat_contacts",
                                             services)))
    for m in ("people", "repeat_people"):
        rels.append((tot(m), col("services_used", "n", m, ks)))
        rels.append((tot(m), col("combinations", "c", m, combos)))
        for k in ks:
            rows = [c for c in combos if len(c.split("+")) == k]
            rels.append((cell("services_used", k, m), col("combinations", "c", m, rows)))
        for s in services:
            rows = [c for c in combos if s in c.split("+")]
            rels.append((cell("by_service", s, m), col("combinations", "c", m, rows)))
    # Band "1": contacts = people; band "2": contacts = 2 * people.
    rels.append((cell("contact_bands", "1", "contacts"), [(cell("contact_bands", "1", "people"), 1)]))
    rels.append((cell("contact_bands", "2", "contacts"), [(cell("contact_bands", "2", "people"), 2)]))
    # Contacts per month and service add up over services and over months.
    mbs = [c for c in t["monthly_by_service"].columns if c != "month"]
    for m in months:
        rels.append((cell("monthly", m, "contacts"),
                     [(cell("monthly_by_service", m, s), 1) for s in mbs]))
    for s in mbs:
        rels.append((cell("by_service", s, "contacts"),
                     [(cell("monthly_by_service", m, s), 1) for m in months]))
    return rels


def attacker_implications(rel) -> list[tuple[tuple, tuple, bool]]:
    """(big, small, zero_iff): small <= big, and with zero_iff, big is 0 exactly when small is
    (no contacts <=> nobody; no repeat contacts <=> no repeat-contact person)."""
    t = rel.tables
    pairs = (("contacts", "people", True), ("repeat_contacts", "repeat_people", True),
             ("people", "repeat_people", False), ("contacts", "repeat_contacts", False))
    out = [(("totals", big, "count"), ("totals", small, "count"), z) for big, small, z in pairs]
    for s in t["by_service"]["service"]:
        out += [(("by_service", s, big), ("by_service", s, small), z) for big, small, z in pairs]
    for m in t["monthly"]["month"]:
        out.append((("monthly", m, "contacts"), ("monthly", m, "people"), True))
        out.append((("monthly", m, "people"), ("monthly", m, "repeat_people"), False))
    for name, dim in (("services_used", "n_services"), ("combinations", "combination")):
        for r in t[name][dim]:
            out.append(((name, str(r), "people"), (name, str(r), "repeat_people"), False))
    return out


def attack(rel, policy: DisclosurePolicy) -> dict[tuple, tuple[float, float]]:
    """Interval constraint propagation over every relation; returns the bounds learnt for
    each suppressed cell. A published value v stands for any true count that rounds to v
    and is not itself suppressible."""
    pub = published_counts(rel)
    r, k = policy.round_to, policy.suppress_below
    lo, hi = {}, {}
    for c, v in pub.items():
        if v is None:
            lo[c], hi[c] = 0.0, math.inf
        else:
            if policy.rounding == "midpoint6":  # 6m - 3 stands for 6m - 5 .. 6m
                a, b = (0, 0) if v == 0 else (v - 2, v + 3)
            else:
                a, b = math.ceil(v - r / 2), math.ceil(v + r / 2) - 1
            a = max(a, 0)
            if v > 0 and k > 1:
                a = max(a, k)
            if v == 0 and k > 1:
                b = 0 if b < k else b
            lo[c], hi[c] = float(a), float(b)
    rels = attacker_relations(rel)
    implications = attacker_implications(rel)
    for _ in range(50):
        changed = False
        for big, small, zero_iff in implications:
            new_small_hi = min(hi[small], hi[big])
            new_big_lo = max(lo[big], lo[small])
            new_small_lo, new_big_hi = lo[small], hi[big]
            if zero_iff:
                if hi[small] == 0:
                    new_big_hi = 0.0
                if lo[big] >= 1:
                    new_small_lo = max(new_small_lo, 1.0)
            if (new_small_lo, new_small_hi, new_big_lo, new_big_hi) != (lo[small], hi[small],
                                                                     lo[big], hi[big]):
                lo[small], hi[small], lo[big], hi[big] = (new_small_lo, new_small_hi,
                                                          new_big_lo, new_big_hi)
                changed = True
        for total, parts in rels:
            s_lo = sum(coef * lo[p] for p, coef in parts)
            s_hi = sum(coef * hi[p] for p, coef in parts)
            new = (max(lo[total], s_lo), min(hi[total], s_hi))
            if new != (lo[total], hi[total]):
                lo[total], hi[total] = new
                changed = True
            for i, (p, coef) in enumerate(parts):
                others = [q for j, q in enumerate(parts) if j != i]
                others_lo = sum(c * lo[q] for q, c in others)
                others_hi = sum(c * hi[q] for q, c in others)
                p_lo, p_hi = lo[p], hi[p]
                if others_hi != math.inf:
                    p_lo = max(p_lo, math.ceil((lo[total] - others_hi) / coef))
                if hi[total] != math.inf:
                    p_hi = min(p_hi, math.floor((hi[total] - others_lo) / coef))
                if (p_lo, p_hi) != (lo[p], hi[p]):
                    lo[p], hi[p] = p_lo, p_hi
                    changed = True
        if not changed:
            break
    return {c: (lo[c], hi[c]) for c, v in pub.items() if v is None}


def recovered(bounds: dict[tuple, tuple[float, float]], k: int) -> list[tuple]:
    """Suppressed cells the attacker pins down: an exact value, or 'a small non-zero count'."""
    return [c for c, (a, b) in bounds.items() if a == b or (a >= 1 and b <= k - 1)]


# ---------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k,r", [(8, 5), (10, 10), (8, 1)])
def test_no_published_cell_below_threshold_and_all_rounded(seed: int, k: int, r: int) -> None:
    policy = DisclosurePolicy(suppress_below=k, round_to=r)
    raw, rel = protected_release(seed, policy)
    pub = published_counts(rel)
    values = [v for v in pub.values() if v is not None]
    assert values and all(v == 0 or v >= k for v in values)
    assert all(v % r == 0 for v in values)
    assert any(v is None for v in pub.values())  # the data do have small cells
    # True zeros are published as 0 (not suppressed) unless secondary suppression hid them.
    true = {("combinations", c, "people"): p
            for c, p in zip(raw["combinations"]["combination"], raw["combinations"]["people"])}
    assert all(pub[c] in (0, None) for c, p in true.items() if p == 0)
    assert any(pub[c] == 0 for c, p in true.items() if p == 0)


def test_rounding_rule() -> None:
    vals = np.array([0, 8, 10, 12, 13, 17, 18, 22, 23, 1234])
    assert round_half_up(vals, 5).tolist() == [0, 10, 10, 10, 15, 15, 20, 20, 25, 1235]
    assert round_half_up(np.array([14, 15, 16, 25]), 10).tolist() == [10, 20, 20, 30]
    assert round_half_up(np.array([3, 7]), 1).tolist() == [3, 7]


def test_published_values_are_rounded_truth() -> None:
    raw, rel = protected_release(5, DisclosurePolicy())
    true = dict(zip(raw["totals"]["measure"], raw["totals"]["count"]))
    pub = dict(zip(rel.tables["totals"]["measure"], rel.tables["totals"]["count"]))
    for m, v in true.items():
        assert pub[m] == int(math.floor(v / 5 + 0.5) * 5)
        assert abs(pub[m] - v) <= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k,r", [(8, 1), (8, 5), (10, 10), (8, "midpoint6")])
def test_differencing_attack_recovers_no_suppressed_cell(seed: int, k: int, r) -> None:
    policy = (DisclosurePolicy(suppress_below=k, rounding="midpoint6") if r == "midpoint6"
              else DisclosurePolicy(suppress_below=k, round_to=r))
    raw, rel = protected_release(seed, policy)
    bounds = attack(rel, policy)
    assert bounds, "the release has suppressed cells to attack"
    assert recovered(bounds, k) == []
    # And the bounds the attacker does get are true statements about the data.
    true = published_counts(protect_measures(raw, DisclosurePolicy.unsafe(), RepeatRule()))
    assert all(a <= true[c] <= b for c, (a, b) in bounds.items())


def test_attack_does_work_without_secondary_suppression() -> None:
    # The attacker is real: with primary suppression only, it recovers cells.
    policy = DisclosurePolicy(suppress_below=8, round_to=1, secondary=False)
    hits = []
    for seed in range(3):
        _, rel = protected_release(seed, policy)
        hits += recovered(attack(rel, policy), 8)
    assert hits


def test_secondary_suppression_on_a_small_table() -> None:
    # total 40 = 3 + 12 + 25: the 3 alone would be 40 - 12 - 25.
    cells = {"T": 40, "a": 3, "b": 12, "c": 25}
    res = protect(cells, DisclosurePolicy(round_to=1),
                  additive=[Additive("T", ("a", "b", "c"))])
    assert res.values["a"] is None and res.values["b"] is None  # next smallest hidden
    assert res.values["T"] == 40 and res.values["c"] == 25
    assert res.primary == {"a"} and res.secondary == {"b"}
    # A zero is never chosen while a positive cell can do the job.
    cells = {"T": 40, "a": 3, "z": 0, "b": 37}
    res = protect(cells, DisclosurePolicy(round_to=1), additive=[Additive("T", ("a", "z", "b"))])
    assert res.values["z"] == 0 and res.values["b"] is None
    # Upper bounds: a hidden people count hides the repeat-people count under it.
    res = protect({"p": 5, "rp": 0}, DisclosurePolicy(), dominance=[("p", "rp")])
    assert res.values == {"p": None, "rp": None}


def test_shares_come_from_protected_counts() -> None:
    _, rel = protected_release(4, DisclosurePolicy())
    bs = rel.tables["by_service"]
    for rec in bs.to_dict("records"):
        if pd.isna(rec["contacts"]) or pd.isna(rec["repeat_contacts"]) or rec["contacts"] == 0:
            assert pd.isna(rec["repeat_contact_share"])
        else:
            assert rec["repeat_contact_share"] == round(100 * rec["repeat_contacts"]
                                                        / rec["contacts"], 1)


def test_policy_validation_and_statement() -> None:
    with pytest.raises(SimlinkError):
        DisclosurePolicy(suppress_below=0)
    with pytest.raises(SimlinkError):
        DisclosurePolicy(round_to=0)
    with pytest.raises(SimlinkError):
        DisclosurePolicy(dp_epsilon=0)
    with pytest.raises(SimlinkError):
        DisclosurePolicy(dp_seed=1)
    text = " ".join(DisclosurePolicy(suppress_below=10, round_to=10).describe())
    assert "1 to 9 are suppressed" in text and "nearest 10" in text
    assert DisclosurePolicy.unsafe().describe()[0].startswith("UNPROTECTED")


# ---------------------------------------------------------------------------- DP
def laplace_variance(scale: float) -> float:
    a = math.exp(-1 / scale)
    return 2 * a / (1 - a) ** 2


@pytest.mark.parametrize("scale", [0.5, 3.0, 40.0])
def test_seeded_discrete_laplace_is_calibrated(scale: float) -> None:
    n = 200_000
    base = np.full(n, 100)
    noisy = discrete_laplace(base, scale, seed=11)
    noise = noisy - base
    assert noise.dtype.kind == "i"
    sd = math.sqrt(laplace_variance(scale))
    assert abs(noise.mean()) < 5 * sd / math.sqrt(n)
    assert noise.var() == pytest.approx(laplace_variance(scale), rel=0.03)
    # P(noise = 0) = (1 - a) / (1 + a) for the discrete Laplace.
    a = math.exp(-1 / scale)
    assert (noise == 0).mean() == pytest.approx((1 - a) / (1 + a), rel=0.05)
    assert np.array_equal(noisy, discrete_laplace(base, scale, seed=11))
    assert not np.array_equal(noisy, discrete_laplace(base, scale, seed=12))


def test_opendp_sampler_is_calibrated() -> None:
    pytest.importorskip("opendp")
    base = np.zeros(20_000, dtype=np.int64)
    noise = discrete_laplace(base, 4.0, seed=None)
    assert abs(noise.mean()) < 0.2
    assert noise.var() == pytest.approx(laplace_variance(4.0), rel=0.1)


def test_dp_release_is_deterministic_for_a_seed_and_still_protected() -> None:
    policy = DisclosurePolicy(dp_epsilon=2.0, dp_seed=7)
    raw, rel1 = protected_release(0, policy)
    rel2 = protect_measures(raw, policy, RepeatRule())
    assert rel1.to_json() == rel2.to_json()
    doc = rel1.to_dict()
    n_cells = doc["disclosure_control"]["dp_cells"]
    assert doc["disclosure_control"]["dp_noise_scale"] == pytest.approx(n_cells / 2.0)
    assert "epsilon 2" in " ".join(rel1.statement)
    values = [v for v in published_counts(rel1).values() if v is not None]
    assert all(v == 0 or v >= 8 for v in values) and all(v % 5 == 0 for v in values)
    # Noise really was added: some published count differs from the rounded truth by > 2.
    truth = published_counts(protect_measures(raw, DisclosurePolicy.unsafe(), RepeatRule()))
    pub = published_counts(rel1)
    assert any(v is not None and abs(v - truth[c]) > 2 for c, v in pub.items())
    other = protect_measures(raw, DisclosurePolicy(dp_epsilon=2.0, dp_seed=8), RepeatRule())
    assert other.to_json() != rel1.to_json()


# ---------------------------------------------------------------------------- implied zeros
def _events(plan: list[tuple[tuple[str, ...], int, int]], start: str = "2024-01-01") -> pd.DataFrame:
    """People as (services in turn, number of contacts, days between contacts)."""
    rows, base = [], np.datetime64(start)
    for key, (services, n, gap) in enumerate(plan, start=1):
        for i in range(n):
            svc = services[i % len(services)]
            rows.append((svc, f"r{len(rows)}", svc, base + i * gap + key, key))
    df = pd.DataFrame(rows, columns=["agency", "record_id", "service", "contact_date", "person_key"])
    df["contact_date"] = pd.to_datetime(df["contact_date"]).dt.date
    return df


def test_a_suppressed_zero_is_not_given_away_by_an_implied_zero(monkeypatch) -> None:
    # mental_health: 3 people, 9 contacts, none a repeat-contact person -> people [c] (3) and
    # repeat people 0; a published "repeat_contacts 0" would say repeat people = 0.
    plan = [(("mental_health",), 3, 200)] * 3 + [(("police",), 1, 1)] * 40 \
        + [(("ed",), 6, 3)] * 12 + [(("ambulance", "ed"), 2, 5)] * 20
    raw = compute_measures(_events(plan))
    mh = raw["by_service"].set_index("service").loc["mental_health"]
    assert (mh["contacts"], mh["people"], mh["repeat_people"], mh["repeat_contacts"]) == (9, 3, 0, 0)
    policy = DisclosurePolicy()
    rel = protect_measures(raw, policy, RepeatRule())
    pub = published_counts(rel)
    assert pub[("by_service", "mental_health", "people")] is None
    assert pub[("by_service", "mental_health", "repeat_people")] is None
    assert pub[("by_service", "mental_health", "repeat_contacts")] is None  # the fix
    bounds = attack(rel, policy)
    assert recovered(bounds, 8) == []
    # The attacker knows the implication: without zero links, it recovers the hidden cell.
    module = importlib.import_module("simlink.counts.release")
    relations = module.relations
    monkeypatch.setattr(module, "relations", lambda raw: (*relations(raw)[:2], []))
    weak = protect_measures(raw, policy, RepeatRule())
    assert published_counts(weak)[("by_service", "mental_health", "repeat_contacts")] == 0
    assert ("by_service", "mental_health", "repeat_people") in recovered(attack(weak, policy), 8)


def test_zero_share_is_not_applicable_not_suppressed() -> None:
    raw = compute_measures(_events([(("police",), 2, 3)] * 12))  # no ambulance/ed/mh contacts
    for policy in (DisclosurePolicy.unsafe(), DisclosurePolicy()):
        rel = protect_measures(raw, policy, RepeatRule())
        text = rel.to_text()
        line = next(x for x in text.splitlines() if x.strip().startswith("ambulance"))
        assert line.split()[-1] == "n/a" and "[c]" not in line
        long = pd.read_csv(io.StringIO(rel.to_csv()), comment="#", dtype=str,
                           keep_default_na=False)
        share = long[(long["measure"] == "repeat_contact_share") & (long["category"] == "ed")]
        assert share["value"].tolist() == ["n/a"]
