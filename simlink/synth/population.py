"""Synthetic people: the true identity behind every record.

One call makes a block of people with consecutive ``person_id``; everything is drawn with
numpy from the block's own generator, so a block is reproducible on its own and memory is
bounded by the block size. Identity is what an agency *should* record: errors come later
(:mod:`simlink.synth.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlink.synth.names import NameTables, load_tables, sample_by_group

# Postcode areas with their weight and number of districts: mostly one county (the
# Leicester-like "LE" and neighbours), with a spread of people from elsewhere.
POSTCODE_AREAS = (
    ("LE", 0.46, 19), ("NG", 0.12, 25), ("DE", 0.08, 24), ("CV", 0.05, 23), ("NN", 0.05, 18),
    ("PE", 0.04, 38), ("B", 0.05, 99), ("M", 0.02, 60), ("LS", 0.02, 29), ("S", 0.02, 36),
    ("L", 0.015, 40), ("BS", 0.015, 41), ("SW", 0.015, 20), ("E", 0.015, 18), ("N", 0.01, 22),
    ("CF", 0.005, 72), ("G", 0.005, 84),
)
INWARD_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))  # letters used in the inward code
HYPHENATED_SHARE = 0.02         # people with a double-barrelled family name
ALT_FAMILY_SHARE = {"F": 0.30, "M": 0.05}  # people known under another family name
MOVED_SHARE = 0.25              # people who move house during the period
LOCAL_MOVE_SHARE = 0.7          # moves within the same postcode district
NHS_BASE_LOW, NHS_BASE_SPAN = 40_000_000, 40_000_000  # 8-digit stems 4xxxxxxx-7xxxxxxx


@dataclass
class People:
    """True identities of a block of people (numpy arrays, one entry per person)."""

    person_id: np.ndarray       # int64
    sex: np.ndarray             # "M"/"F"
    origin: np.ndarray          # origin name
    given: np.ndarray           # str
    family: np.ndarray          # str
    family_alt: np.ndarray      # other family name ("" if none)
    dob: np.ndarray             # datetime64[D]
    postcode: np.ndarray        # "LE1 7RH" form
    postcode_alt: np.ndarray    # postcode after a move ("" if none)
    nhs_number: np.ndarray      # ten digits, valid check digit, unique

    def __len__(self) -> int:
        return len(self.person_id)


def _postcodes(rng: np.random.Generator, n: int, area: np.ndarray | None = None,
               district: np.ndarray | None = None) -> np.ndarray:
    """UK-format postcodes clustered by area and district (same area -> same outward code)."""
    names = np.array([a for a, _, _ in POSTCODE_AREAS], dtype=object)
    weights = np.array([w for _, w, _ in POSTCODE_AREAS])
    sizes = np.array([d for _, _, d in POSTCODE_AREAS])
    if area is None:
        area = rng.choice(len(names), size=n, p=weights / weights.sum())
    if district is None:
        # Low-numbered (central) districts are more populous.
        district = np.minimum((rng.pareto(1.2, n) * sizes[area] / 4).astype(np.int64), sizes[area] - 1) + 1
    sector = rng.integers(0, 10, n)
    units = rng.integers(0, len(INWARD_LETTERS), (n, 2))
    outward = names[area] + district.astype(str).astype(object)
    inward = sector.astype(str).astype(object) + INWARD_LETTERS[units[:, 0]].astype(object) + INWARD_LETTERS[units[:, 1]].astype(object)
    return outward + " " + inward


def _postcode_area_district(postcodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names = [a for a, _, _ in POSTCODE_AREAS]
    outward = [p.split(" ")[0] for p in postcodes]
    area = np.array([names.index(o.rstrip("0123456789")) for o in outward])
    district = np.array([int(o[len(o.rstrip("0123456789")):]) for o in outward])
    return area, district


def nhs_numbers(person_id: np.ndarray, seed: int, rng: np.random.Generator) -> np.ndarray:
    """Unique ten-digit NHS numbers with a valid modulus-11 check digit.

    The first eight digits are a seeded permutation of the person id (unique for up to 40
    million people); the ninth is random but nudged so that the check digit is never 10
    (such numbers are never issued); the tenth is the check digit.
    """
    multiplier = 7_919_993 + 2 * (seed % 1_000)  # odd, not a multiple of 5 -> coprime with span
    if multiplier % 5 == 0:
        multiplier += 2
    stem = NHS_BASE_LOW + (person_id * multiplier + seed * 104_729) % NHS_BASE_SPAN
    digits = np.zeros((len(person_id), 10), dtype=np.int64)
    for i in range(8):
        digits[:, i] = stem // 10 ** (7 - i) % 10
    digits[:, 8] = rng.integers(0, 10, len(person_id))
    weights = np.arange(10, 1, -1)
    for _ in range(2):  # one nudge always suffices: the 9th digit's weight is 2, coprime with 11
        check = 11 - (digits[:, :9] @ weights) % 11
        bad = check == 10
        digits[bad, 8] = (digits[bad, 8] + 1) % 10
    check = 11 - (digits[:, :9] @ weights) % 11
    digits[:, 9] = np.where(check == 11, 0, check)
    number = digits @ (10 ** np.arange(9, -1, -1, dtype=np.int64))  # first digit is 4-7: ten digits
    return number.astype(str).astype(object)


def make_people(rng: np.random.Generator, first_id: int, n: int, seed: int,
                reference_day: np.datetime64, tables: NameTables | None = None) -> People:
    """A block of ``n`` people with ids ``first_id .. first_id + n - 1``."""
    tables = tables or load_tables()
    person_id = np.arange(first_id, first_id + n, dtype=np.int64)
    sex = np.where(rng.random(n) < 0.52, "M", "F").astype(object)  # crisis contacts: slightly more men
    origin = np.array(tables.origins, dtype=object)[rng.choice(len(tables.origins), n, p=tables.origin_share)]
    # Second-generation names: some people have a British given name whatever their origin.
    given_origin = np.where(rng.random(n) < 0.15, "british", origin).astype(object)
    given = sample_by_group(rng, np.char.add(sex.astype(str), given_origin.astype(str)),
                            {s + o: tables.given[(s, o)] for s in "MF" for o in tables.origins})
    family = sample_by_group(rng, origin, tables.surname)
    hyphen = rng.random(n) < HYPHENATED_SHARE
    if hyphen.any():
        family[hyphen] = family[hyphen] + "-" + tables.surname["british"].sample(rng, int(hyphen.sum()))
    alt_share = np.where(sex == "F", ALT_FAMILY_SHARE["F"], ALT_FAMILY_SHARE["M"])
    has_alt = rng.random(n) < alt_share
    family_alt = np.full(n, "", dtype=object)
    family_alt[has_alt] = tables.surname["british"].sample(rng, int(has_alt.sum()))
    # Adult age profile of crisis contacts: peak in the twenties and thirties, long tail.
    # Ages past 99 are drawn again rather than clipped: clipping put 0.8% of people on one
    # date of birth, a spike that chained thousands of people together at 1M contacts.
    ages = 16 + rng.gamma(2.0, 12.0, n)
    while (too_old := ages >= 99).any():
        ages[too_old] = 16 + rng.gamma(2.0, 12.0, int(too_old.sum()))
    age_days = (ages * 365.25).astype(np.int64)
    dob = reference_day - age_days.astype("timedelta64[D]")
    postcode = _postcodes(rng, n)
    moved = rng.random(n) < MOVED_SHARE
    postcode_alt = np.full(n, "", dtype=object)
    if moved.any():
        area, district = _postcode_area_district(postcode[moved])
        local = rng.random(len(area)) < LOCAL_MOVE_SHARE
        postcode_alt[moved] = np.where(local, _postcodes(rng, len(area), area, district), _postcodes(rng, len(area)))
    nhs = nhs_numbers(person_id, seed, rng)
    return People(person_id, sex, origin, given, family, family_alt, dob, postcode, postcode_alt, nhs)
