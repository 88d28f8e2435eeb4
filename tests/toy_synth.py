"""A small throwaway generator of crisis-contact records with known truth.

Stand-in for ``simlink synth`` (built on another branch) so that linkage can be tested and
benchmarked now. People have one or more contacts spread over the four agencies; each
contact copies the person's identifiers with errors (typos, swapped day/month, moved
postcode, missing values) at a rate set by ``errors`` (low / medium / high).
Vectorised with numpy; typos touch only the few rows that get one.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

AGENCIES = ("police", "ambulance", "ed", "mental_health")
RATES = {  # per contact, per field: (typo, missing) ; extra: dob swap, moved postcode, new family name
    "low": dict(typo=0.02, missing=0.01, swap=0.005, moved=0.05, family_change=0.005),
    "medium": dict(typo=0.05, missing=0.03, swap=0.015, moved=0.10, family_change=0.01),
    "high": dict(typo=0.10, missing=0.06, swap=0.03, moved=0.20, family_change=0.02),
}
_ONSETS = ["b", "br", "c", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
           "sh", "st", "t", "th", "v", "w", "y", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
_CODAS = ["", "", "n", "r", "s", "l", "th", "ck", "m", "ne", "ll", "son", "ton", "ley"]
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _vocabulary(rng: np.random.Generator, size: int, syllables: tuple[int, int]) -> np.ndarray:
    words: set[str] = set()
    while len(words) < size:
        n = rng.integers(syllables[0], syllables[1] + 1)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice(_CODAS)
        words.add(word.capitalize())
    return np.array(sorted(words), dtype=object)


def _zipf_choice(rng: np.random.Generator, vocab: np.ndarray, n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** exponent
    return vocab[rng.choice(len(vocab), size=n, p=weights / weights.sum())]


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 2:
        return word + rng.choice(list(_LETTERS))
    i = int(rng.integers(0, len(word)))
    kind = rng.integers(0, 4)
    if kind == 0:
        return word[:i] + rng.choice(list(_LETTERS)) + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + rng.choice(list(_LETTERS)) + word[i:]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def _apply_typos(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    out = values.copy()
    for i in np.flatnonzero(rng.random(len(values)) < rate):
        if isinstance(out[i], str):
            out[i] = _typo(rng, out[i])
    return out


def _postcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    areas = np.array(["LS", "M", "B", "BD", "S", "NE", "L", "SW", "E", "N", "CF", "G", "EH", "BS", "NG"])
    area = areas[rng.integers(0, len(areas), n)]
    district = rng.integers(1, 30, n)
    sector = rng.integers(0, 10, n)
    unit = [a + b for a, b in zip(rng.choice(list("ABDEFGHJLNPQRSTUWXYZ"), n), rng.choice(list("ABDEFGHJLNPQRSTUWXYZ"), n))]
    return np.array([f"{a}{d} {s}{u}" for a, d, s, u in zip(area, district, sector, unit)], dtype=object)


def generate(people: int, seed: int, out_dir: str | Path, errors: str = "medium",
             contacts_per_person: float = 2.5) -> dict[str, Path]:
    """Write police.csv, ambulance.csv, ed.csv, mental_health.csv and truth.csv into out_dir."""
    rate = RATES[errors]
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    given_vocab = _vocabulary(rng, 800, (1, 2))
    family_vocab = _vocabulary(rng, 8000, (1, 3))
    person_given = _zipf_choice(rng, given_vocab, people, 1.0)
    person_family = _zipf_choice(rng, family_vocab, people, 0.8)
    dob = np.datetime64("1940-01-01") + rng.integers(0, 68 * 365, people).astype("timedelta64[D]")
    sex = rng.choice(np.array(["M", "F"], dtype=object), people)
    postcode_pool = _postcodes(rng, max(people // 2, 100))
    person_postcode = postcode_pool[rng.integers(0, len(postcode_pool), people)]

    contacts = 1 + rng.geometric(1.0 / contacts_per_person, people) - 1
    contacts = np.maximum(contacts, 1)
    pid = np.repeat(np.arange(people), contacts)
    n = len(pid)
    given = _apply_typos(rng, person_given[pid], rate["typo"])
    family = person_family[pid].copy()
    changed = rng.random(n) < rate["family_change"]
    family[changed] = family_vocab[rng.integers(0, len(family_vocab), changed.sum())]
    family = _apply_typos(rng, family, rate["typo"])
    days = dob[pid].astype("datetime64[D]")
    ymd = pd.to_datetime(days)
    y, m, d = ymd.year.to_numpy(), ymd.month.to_numpy(), ymd.day.to_numpy()
    swap = (rng.random(n) < rate["swap"]) & (d <= 12)
    m2, d2 = np.where(swap, d, m), np.where(swap, m, d)
    digit = rng.random(n) < rate["typo"] * 0.6
    d2 = np.where(digit & (d2 < 28), np.clip(d2 + rng.choice([-1, 1, 10, -10], n), 1, 28), d2)
    dob_text = np.array([f"{dd:02d}/{mm:02d}/{yy}" for dd, mm, yy in zip(d2, m2, y)], dtype=object)
    postcode = person_postcode[pid].copy()
    moved = rng.random(n) < rate["moved"]
    postcode[moved] = postcode_pool[rng.integers(0, len(postcode_pool), moved.sum())]
    for i in np.flatnonzero(rng.random(n) < rate["typo"] * 0.5):  # one character mistyped
        j = int(rng.integers(0, len(postcode[i])))
        if postcode[i][j] != " ":
            postcode[i] = postcode[i][:j] + (str(rng.integers(0, 10)) if postcode[i][j].isdigit() else rng.choice(list("ABDEFGHJLNPQRSTUWXYZ"))) + postcode[i][j + 1:]
    sex_c = sex[pid].copy()
    columns = {"given_name": given, "family_name": family, "date_of_birth": dob_text,
               "sex": sex_c, "postcode": postcode}
    for name, values in columns.items():
        values[rng.random(n) < rate["missing"]] = ""
    agency = np.array(AGENCIES, dtype=object)[rng.integers(0, len(AGENCIES), n)]
    contact_date = np.datetime64("2024-01-01") + rng.integers(0, 365, n).astype("timedelta64[D]")
    frame = pd.DataFrame({"agency": agency, "person_id": pid, **columns,
                          "contact_date": pd.to_datetime(contact_date).strftime("%Y-%m-%d")})
    frame["record_id"] = [f"{a[:3].upper()}{i:08d}" for a, i in zip(frame["agency"], range(n))]
    paths = {}
    for name in AGENCIES:
        part = frame[frame["agency"] == name]
        path = out / f"{name}.csv"
        part[["record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode",
              "contact_date"]].to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
        paths[name] = path
    frame[["agency", "record_id", "person_id"]].to_csv(out / "truth.csv", index=False)
    paths["truth"] = out / "truth.csv"
    return paths
