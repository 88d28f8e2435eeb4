"""Error injection: turn true identities into what an agency actually recorded.

:func:`record_agency` takes the people behind one agency's contacts and returns the contract
columns as text, plus two bit masks per record (bits from
:data:`simlink.synth.profiles.ERROR_BIT`): which errors *could* apply and which *were*
applied. Work is vectorised per error; only the few records that get a typo, a nickname or
a mistyped NHS number go through a small Python loop.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from simlink.synth.names import NameTables
from simlink.synth.population import People
from simlink.synth.profiles import ERROR_BIT, AgencyStyle, ErrorRates

LETTERS = "abcdefghijklmnopqrstuvwxyz"
NFA_POSTCODE = "ZZ99 3VZ"


@dataclass
class AgencyRecords:
    """Contract columns (object arrays of str, None = missing) and error bit masks."""

    columns: dict[str, np.ndarray]
    applicable: np.ndarray  # uint32
    applied: np.ndarray     # uint32


class _Injector:
    """Draws one error at a time over all records and keeps the bookkeeping in one place."""

    def __init__(self, rng: np.random.Generator, rates: ErrorRates, n: int) -> None:
        self.rng, self.rates, self.n = rng, rates, n
        self.applicable = np.zeros(n, dtype=np.uint32)
        self.applied = np.zeros(n, dtype=np.uint32)

    def draw(self, name: str, can_apply: np.ndarray | bool = True) -> np.ndarray:
        """Boolean mask of records that get error ``name``. Always draws n numbers (determinism)."""
        can = np.broadcast_to(np.asarray(can_apply, dtype=bool), (self.n,))
        hit = (self.rng.random(self.n) < getattr(self.rates, name)) & can
        self.applicable[can] |= np.uint32(ERROR_BIT[name])
        self.applied[hit] |= np.uint32(ERROR_BIT[name])
        return hit


def _typo(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One keyboard-style edit per value: insert, delete, substitute or transpose."""
    n = len(values)
    ops, where, letters = rng.integers(0, 4, n), rng.random(n), rng.integers(0, 26, n)
    out = np.empty(n, dtype=object)
    for k, (s, op, u, c) in enumerate(zip(values, ops, where, letters)):
        i = int(u * len(s))
        ch = LETTERS[c]
        if op == 0:
            s = s[:i] + ch + s[i:]
        elif op == 1:
            s = s[:i] + s[i + 1:]
        elif op == 2:
            ch = ch if ch != s[i].lower() else LETTERS[(c + 1) % 26]
            s = s[:i] + ch + s[i + 1:]
        else:
            i = min(i, len(s) - 2)
            s = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        out[k] = s
    return out


def _nhs_typo(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    ops, where, shift = rng.integers(0, 2, n), rng.integers(0, 9, n), rng.integers(1, 10, n)
    out = np.empty(n, dtype=object)
    for k, (s, op, i, d) in enumerate(zip(values, ops, where, shift)):
        if op == 0 or s[i] == s[i + 1]:
            s = s[:i] + str((int(s[i]) + d) % 10) + s[i + 1:]
        else:
            s = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        out[k] = s
    return out


def _pick(options: list[tuple[str, ...]], rng: np.random.Generator) -> np.ndarray:
    choice = rng.random(len(options))
    return np.array([o[int(u * len(o))] for o, u in zip(options, choice)], dtype=object)


def _strftime(days: np.ndarray, fmt: str) -> np.ndarray:
    """Format datetime64[D] values per distinct value (few distinct dates, many rows)."""
    unique, inverse = np.unique(days, return_inverse=True)
    text = []
    for d in unique.astype("datetime64[D]").astype(_dt.date):
        text.append(d.strftime(fmt.replace("%-d", str(d.day))))
    return np.array(text, dtype=object)[inverse]


def _case(values: np.ndarray, style: str) -> np.ndarray:
    if style == "as_is" or len(values) == 0:
        return values
    arr = pa.array(values, pa.string())
    arr = pc.utf8_upper(arr) if style == "upper" else pc.utf8_title(arr) if style == "title" else pc.utf8_lower(arr)
    return np.array(arr.to_pylist(), dtype=object)


_TRANSLITERATE = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss"})


def to_ascii(values: np.ndarray) -> np.ndarray:
    """What a system without accents records: Wójcik -> Wojcik, Paweł -> Pawel."""
    series = pd.Series(values, dtype=object)
    fold = {v: unicodedata.normalize("NFKD", v.translate(_TRANSLITERATE)).encode("ascii", "ignore").decode("ascii") or v
            for v in series.unique()}
    return series.map(fold).to_numpy(dtype=object)


def _with_dob_errors(rng: np.random.Generator, inj: _Injector, dob: np.ndarray) -> np.ndarray:
    y = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    m = dob.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (dob - dob.astype("datetime64[M]")).astype(np.int64) + 1
    swap = inj.draw("dob_day_month_swap", (d <= 12) & (d != m))
    m, d = np.where(swap, d, m), np.where(swap, m, d)
    wrong = inj.draw("dob_wrong_year")
    y = np.where(wrong, y + rng.choice(np.array([-10, -1, 1, 10]), inj.n), y)
    feb29 = (m == 2) & (d == 29) & ~((y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0)))
    d = np.where(feb29, 28, d)
    text = np.char.add(np.char.add(np.char.zfill(y.astype(str), 4), "-"),
                       np.char.add(np.char.add(np.char.zfill(m.astype(str), 2), "-"), np.char.zfill(d.astype(str), 2)))
    return text.astype("datetime64[D]")


def _replace(values: np.ndarray, old: str, new: str) -> np.ndarray:
    """``str.replace`` on an object array; numpy's ``char.replace`` fails on an empty one."""
    if len(values) == 0:
        return values.astype(object)
    return np.char.replace(values.astype(str), old, new).astype(object)


def record_agency(rng: np.random.Generator, people: People, person_index: np.ndarray,
                  contact_day: np.ndarray, contact_minute: np.ndarray, rates: ErrorRates,
                  style: AgencyStyle, tables: NameTables) -> AgencyRecords:
    """What one agency recorded for the given contacts (``contact_day``: datetime64[D])."""
    n = len(person_index)
    inj = _Injector(rng, rates, n)
    sex = people.sex[person_index]
    given = people.given[person_index].copy()
    family = people.family[person_index].copy()

    alias = inj.draw("alias")
    if alias.any():
        groups = sex[alias]
        given[alias] = np.where(groups == "M", tables.given[("M", "british")].sample(rng, int(alias.sum())),
                                tables.given[("F", "british")].sample(rng, int(alias.sum())))
        family[alias] = tables.surname["british"].sample(rng, int(alias.sum()))
    alt = people.family_alt[person_index]
    changed = inj.draw("family_change", alt != "")
    family[changed] = alt[changed]
    hyphenated = np.char.find(family.astype(str), "-") >= 0
    part = inj.draw("hyphen_partial", hyphenated)
    if part.any():
        family[part] = _pick([tuple(s.split("-")) for s in family[part]], rng)
    has_nick = pd.Series(given).isin(list(tables.nicknames)).to_numpy()
    nick = inj.draw("nickname", has_nick)
    if nick.any():
        given[nick] = _pick([tables.nicknames[g] for g in given[nick]], rng)
    initial = inj.draw("initial_only")
    given[initial] = np.array([g[0] for g in given[initial]], dtype=object)
    swap = inj.draw("name_swap")
    given[swap], family[swap] = family[swap], given[swap].copy()
    for name, values in (("typo_given", given), ("typo_family", family)):
        hit = inj.draw(name, np.char.str_len(values.astype(str)) >= 3)
        if hit.any():
            values[hit] = _typo(values[hit], rng)

    dob = _with_dob_errors(rng, inj, people.dob[person_index])
    postcode = people.postcode[person_index].copy()
    alt_pc = people.postcode_alt[person_index]
    moved = inj.draw("postcode_moved", alt_pc != "")
    postcode[moved] = alt_pc[moved]
    nhs = people.nhs_number[person_index].copy()
    bad_nhs = inj.draw("nhs_typo")
    if bad_nhs.any():
        nhs[bad_nhs] = _nhs_typo(nhs[bad_nhs], rng)

    # Recording style, then noise against the style.
    if style.ascii_only:
        given, family = to_ascii(given), to_ascii(family)
    given, family = _case(given, style.name_case), _case(family, style.name_case)
    noisy = inj.draw("case_noise")
    other_case = "lower" if style.name_case == "upper" else "upper"
    given[noisy], family[noisy] = _case(given[noisy], other_case), _case(family[noisy], other_case)
    spaced = inj.draw("whitespace_noise")
    pad = rng.integers(0, 3, n)
    for values in (given, family):
        values[spaced & (pad == 0)] = " " + values[spaced & (pad == 0)]
        values[spaced & (pad == 1)] = values[spaced & (pad == 1)] + "  "
        values[spaced & (pad == 2)] = _replace(values[spaced & (pad == 2)], "-", " - ") + " "
    male, female, unknown = style.sex_codes
    sex_text = np.where(sex == "M", male, female).astype(object)
    sex_text[inj.draw("sex_unknown")] = unknown
    if style.postcode_compact:
        postcode = _replace(postcode, " ", "")
    postcode[inj.draw("postcode_nfa")] = NFA_POSTCODE
    if style.nhs_spaced:
        digits = pa.array(nhs, pa.string())
        groups = [pc.utf8_slice_codeunits(digits, a, b) for a, b in ((0, 3), (3, 6), (6, 10))]
        nhs = pc.binary_join_element_wise(*groups, " ").to_numpy(zero_copy_only=False).astype(object)

    dob_text = _strftime(dob, style.dob_format)
    contact_text = _strftime(contact_day, style.contact_format.split(" ")[0].split("T")[0])
    if "%H" in style.contact_format:
        sep = " " if " " in style.contact_format else "T"
        seconds = ":00" if "%S" in style.contact_format else ""
        clock = np.array([f"{sep}{m // 60:02d}:{m % 60:02d}{seconds}" for m in range(1440)], dtype=object)
        contact_text = contact_text + clock[contact_minute]

    given[inj.draw("missing_given")] = style.missing_name or None
    family[inj.draw("missing_family")] = style.missing_name or None
    dob_text[inj.draw("missing_dob")] = None
    sex_text[inj.draw("missing_sex")] = None
    postcode[inj.draw("missing_postcode")] = None
    nhs[inj.draw("missing_nhs")] = None
    columns = {"given_name": given, "family_name": family, "date_of_birth": dob_text, "sex": sex_text,
               "postcode": postcode, "contact_date": contact_text, "nhs_number": nhs}
    return AgencyRecords(columns, inj.applicable, inj.applied)
