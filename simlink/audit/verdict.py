"""Scoring the linkage unit's guesses and the one-line verdict.

Every rate is the share of records (all, or those of people with >= 5 contacts) whose name
in one field the attack got right, printed beside what needs no file at all: the blind
guess (everyone named with the commonest list name), the blind guess by birth year, and a
random draw from the list. The bar: the strongest attack at most blind guess + 1 point, for
given and family names alike, for all records and for frequent contacters. Only rates, never
a name, leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simlink.audit.reference import Reference

BAR_POINTS = 0.01
MIN_RECORDS = 1000  # below this a rate is noise: the verdict is INCONCLUSIVE
MIN_SUBSET = 100  # records of frequent contacters needed to judge that subset
FREQUENT = 5  # contacts that make a frequent contacter
NOISE_FACTOR = 2.0  # a cell fails when above the bar by more than this many person-clustered SEs


@dataclass
class Subsets:
    masks: dict[str, np.ndarray]

    @classmethod
    def of(cls, persons: np.ndarray) -> "Subsets":
        counts = pd.Series(persons).map(pd.Series(persons).value_counts()).to_numpy()
        frequent = (persons >= 0) & (counts >= FREQUENT)
        return cls({"all": np.ones(len(persons), bool), f"{FREQUENT}+ contacts": frequent})


def correct(guesses: np.ndarray, truth: np.ndarray) -> np.ndarray:
    right = guesses == truth
    return np.asarray(right, dtype=bool) & pd.notna(truth) & pd.notna(guesses)


def list_guess(reference: Reference, field_name: str, year: np.ndarray) -> np.ndarray:
    """Per record the list's commonest name for its birth year, mixed with the national list as
    the alignment does (the national list where the year is unknown): the blind guess of an
    attacker who knows birth years, and what every attack falls back to."""
    from simlink.audit.align import group_list

    tops = {int(y): next(iter(group_list(reference, field_name, int(y), 0.5, 50)), None) for y in np.unique(year)}
    return np.array([tops[int(y)] for y in year], dtype=object)


def baselines(truth: np.ndarray, year: np.ndarray, reference: Reference, field_name: str,
              mask: np.ndarray) -> dict[str, float]:
    """What the list alone gets: commonest name, commonest name of the year, random draw."""
    t, y = truth[mask], year[mask]
    n = max(len(t), 1)
    national = reference.names(field_name)
    top = next(iter(national), None)
    blind = float(np.sum(t == top)) / n if top else 0.0
    tops = {int(yr): next(iter(reference.names_in_year(field_name, int(yr))), None) for yr in np.unique(y)}
    by_year = np.array([tops.get(int(v)) for v in y], dtype=object)
    blind_year = float(correct(by_year, t).sum()) / n
    blind_mixed = float(correct(list_guess(reference, field_name, y), t).sum()) / n
    shares = pd.Series(t[pd.notna(t)]).value_counts() / n
    random = float(sum(national.get(name, 0.0) * share for name, share in shares.items()))
    return {"blind": blind, "blind_by_year": blind_year, "blind_mixed": blind_mixed, "random": random}


@dataclass
class Verdict:
    records: int
    files: int
    reference: str
    schema: str
    assume_year: bool = True
    rates: dict = field(default_factory=dict)  # field -> subset -> {"records": n, attack: rate, ...}
    baselines: dict = field(default_factory=dict)  # field -> subset -> baselines
    strongest: dict = field(default_factory=dict)  # field -> subset -> (attack, rate)
    noise: dict = field(default_factory=dict)  # field -> subset -> person-clustered SE of the strongest rate
    census: dict = field(default_factory=dict)
    structure: dict = field(default_factory=dict)
    details: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    preamble: list = field(default_factory=list)  # lines printed first (today's single-file report)

    @property
    def measured(self) -> bool:
        return self.records >= MIN_RECORDS and bool(self.strongest)

    def blind(self, field_name: str, subset: str) -> float:
        """The blind guess the bar is set from: the better of the national and (when the
        attacker is assumed to know birth years) the by-year guess — the file must add
        less than the bar to what the attacker has without it."""
        base = self.baselines[field_name][subset]
        if not self.assume_year:
            return base["blind"]
        return max(base["blind"], base["blind_by_year"], base.get("blind_mixed", 0.0))

    def judged(self) -> list[tuple[str, str, str, float, float]]:
        """(field, subset, attack, rate, blind) for the strongest attack of every cell."""
        return [(f, s, a, r, self.blind(f, s)) for f, d in self.strongest.items() for s, (a, r) in d.items()]

    def se(self, field_name: str, subset: str) -> float:
        return self.noise.get(field_name, {}).get(subset, 0.0)

    def failures(self) -> list[tuple[str, str, str, float, float]]:
        """Cells above the bar by more than twice their noise: a real failure at any size."""
        return [j for j in self.judged() if j[3] > j[4] + BAR_POINTS + NOISE_FACTOR * self.se(j[0], j[1])]

    def uncertain(self) -> list[tuple[str, str, str, float, float]]:
        """Cells above the bar, but within twice their noise: on a small population a few
        people with many contacts, named by luck, can lift a rate this far."""
        failed = self.failures()
        return [j for j in self.judged() if j[3] > j[4] + BAR_POINTS and j not in failed]

    @property
    def passes(self) -> bool | None:
        return None if not self.measured else not self.failures() and not self.uncertain()

    def line(self) -> str:
        if self.records < MIN_RECORDS:
            return (f"audit: INCONCLUSIVE — {self.records:,} records; rates on fewer than {MIN_RECORDS:,} "
                    "records say nothing (audit all agencies' files together)")
        if not self.strongest:
            return "audit: NOT MEASURED — give --truth (the inputs that were encoded) to score the attacks"
        f, subset, attack, rate, blind = max(self.judged(), key=lambda j: j[3] - j[4])
        label = f.replace("_name", " names")
        who = "" if subset == "all" else f" of people with {subset}"
        status = "FAIL" if self.failures() else "INCONCLUSIVE" if self.uncertain() else "PASS"
        tail = (f"; above the bar only within its noise (±{self.se(f, subset):.1%}): too few people, "
                "audit more records") if status == "INCONCLUSIVE" else ""
        return (f"audit: {status} — strongest attack ({attack}) names {rate:.1%} of {label}{who} "
                f"(blind guess {blind:.1%}, bar blind + {BAR_POINTS * 100:.1f} pp){tail}")

    def to_dict(self) -> dict:
        return {"verdict": self.line(), "passes": self.passes, "bar_points": BAR_POINTS, "records": self.records,
                "assume_year": self.assume_year,
                "judged": [{**dict(zip(("field", "subset", "attack", "rate", "blind"), j)), "se": self.se(j[0], j[1])}
                           for j in self.judged()],
                "files": self.files, "reference": self.reference, "schema": self.schema, "rates": self.rates,
                "baselines": self.baselines,
                "strongest": {f: {s: {"attack": a, "rate": r} for s, (a, r) in d.items()}
                              for f, d in self.strongest.items()},
                "census": self.census, "structure": self.structure, "attack_runs": self.details, "notes": self.notes}

    def text(self) -> str:
        lines = [f"simlink audit (linkage unit's view): {self.records:,} records in {self.files} file(s), "
                 f"schema '{self.schema}', list: {self.reference}"]
        lines[:0] = self.preamble
        for f, subsets in self.rates.items():
            for subset, rates in subsets.items():
                base = self.baselines[f][subset]
                lines.append(f"{f} [{subset}, {rates['records']:,} records]: blind {base['blind']:.2%}, "
                             f"blind by year {base['blind_by_year']:.2%} (mixed with national "
                             f"{base['blind_mixed']:.2%}), random draw {base['random']:.2%}; noise of the "
                             f"strongest rate ±{self.se(f, subset):.2%} (person-clustered SE)")
                attacks = {k: v for k, v in rates.items() if k != "records"}
                for attack, rate in sorted(attacks.items(), key=lambda kv: -kv[1]):
                    lines.append(f"    {attack:<24} {rate:>7.2%}")
        if self.census:
            c = self.census
            lines.append(f"identical encodings: {c['share_in_groups_ge_k']:.2%} of records share theirs with >= "
                         f"{c['k'] - 1} others in their file; {c['share_in_other_file']:.2%} have one in another file; "
                         f"of those, named by the strongest attack: {c.get('named_in_groups', 0):.2%} / "
                         f"{c.get('named_in_other_file', 0):.2%}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(self.line())
        return "\n".join(lines)


def census(record_hash: np.ndarray, file: np.ndarray, k: int = FREQUENT) -> tuple[dict, np.ndarray, np.ndarray]:
    """How many records share a byte-identical encoding with >= k-1 others in their file,
    and how many have a byte-identical encoding in another file."""
    frame = pd.DataFrame({"h": record_hash, "f": file})
    within = frame.groupby(["f", "h"])["h"].transform("size").to_numpy()
    files_per_hash = frame.groupby("h")["f"].transform("nunique").to_numpy()
    in_groups, cross = within >= k, files_per_hash >= 2
    sizes = frame.groupby(["f", "h"]).size()
    doc = {"k": k, "share_in_groups_ge_k": float(in_groups.mean()), "share_in_other_file": float(cross.mean()),
           "largest_group": int(sizes.max()) if len(sizes) else 0,
           "distinct_share": float(len(sizes) / max(len(frame), 1))}
    return doc, in_groups, cross
