"""A small population simulator for measuring attacks and linkage cost without real data.

People get names drawn from given frequency lists, a date of birth, sex and postcode; each
person has one to three contact records, and repeat records carry typical recording
errors (name typos, day/month swaps, a wrong year digit, a new postcode). Used by the
privacy benchmark and tests; the full synthetic-truth generator lives in simlink.synth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class ErrorRates:
    name_typo: float = 0.08
    dob_swap: float = 0.02
    dob_year: float = 0.02
    postcode_change: float = 0.10


def _typo(rng: np.random.Generator, name: str) -> str:
    if len(name) < 3:
        return name
    i = int(rng.integers(1, len(name)))
    kind = rng.integers(3)
    if kind == 0:
        return name[:i] + name[i + 1:]
    if kind == 1:
        return name[:i] + str(rng.choice(_LETTERS)) + name[i + 1:]
    return name[:i - 1] + name[i] + name[i - 1] + name[i + 1:]


def _sample(rng: np.random.Generator, freq: dict[str, float], n: int) -> np.ndarray:
    names = np.array(list(freq), dtype=object)
    p = np.array(list(freq.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def simulate(given: dict[str, float], family: dict[str, float], people: int, *, seed: int = 0,
             errors: ErrorRates = ErrorRates()) -> tuple[pa.Table, np.ndarray]:
    """(agency input table of strings, person id per row)."""
    rng = np.random.default_rng(seed)
    g, f = _sample(rng, given, people), _sample(rng, family, people)
    dob = np.datetime64("1940-01-01") + rng.integers(0, 365 * 65, size=people).astype("timedelta64[D]")
    sex = rng.choice(np.array(["M", "F"], dtype=object), size=people)
    postcode = np.array([f"{a}{int(d)} {int(e)}{b}{c}" for a, d, e, b, c in zip(
        rng.choice(np.array(["LS", "M", "B", "SW", "NE", "BS", "CF", "G"]), people), rng.integers(1, 20, people),
        rng.integers(1, 10, people), rng.choice(_LETTERS[:20], people), rng.choice(_LETTERS[:20], people))], dtype=object)
    repeats = rng.choice([1, 2, 3], size=people, p=[0.5, 0.3, 0.2])
    person = np.repeat(np.arange(people), repeats)
    first = np.r_[True, person[1:] != person[:-1]]
    rows: dict[str, list] = {k: [] for k in ("given_name", "family_name", "date_of_birth", "sex", "postcode")}
    for r, pid in enumerate(person):
        gn, fn, d, pc = g[pid], f[pid], str(dob[pid]), postcode[pid]
        if not first[r]:
            if rng.random() < errors.name_typo:
                gn = _typo(rng, gn)
            if rng.random() < errors.name_typo:
                fn = _typo(rng, fn)
            if rng.random() < errors.dob_swap and int(d[8:]) <= 12:
                d = f"{d[:5]}{d[8:]}-{d[5:7]}"
            if rng.random() < errors.dob_year:
                d = f"{d[:3]}{(int(d[3]) + int(rng.integers(1, 10))) % 10}{d[4:]}"
            if rng.random() < errors.postcode_change:
                pc = postcode[int(rng.integers(people))]
        rows["given_name"].append(gn)
        rows["family_name"].append(fn)
        rows["date_of_birth"].append(d)
        rows["sex"].append(sex[pid])
        rows["postcode"].append(pc)
    n = len(person)
    table = pa.table({
        "record_id": [f"r{i}" for i in range(n)],
        **{k: pa.array(v, pa.string()) for k, v in rows.items()},
        "contact_date": ["2025-01-15"] * n,
    })
    return table, person
