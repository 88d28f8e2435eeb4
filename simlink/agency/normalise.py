"""Normalisers: turn the many ways agencies write an identifier into one canonical string.

Each normaliser takes a pyarrow string array and returns a :class:`Normalised` result:
the canonical values (null where missing) and a mask of values that were present but could
not be understood. All work is vectorised with pyarrow compute kernels (RE2 regular
expressions, Unicode normalisation) so that the cost is per *distinct* value at most; the
encoder calls them on the dictionary of a chunk, not on every row.

Canonical forms:

* ``person_name`` — lower-case ASCII-folded words separated by single spaces, with titles,
  suffixes, punctuation and initials' full stops removed, ``Mc``/``Mac`` joined to the rest
  of the name, apostrophes dropped (``O'Brien`` → ``obrien``), hyphens turned into spaces.
* ``date`` — ``YYYY-MM-DD``; accepts ISO, ``dd/mm/yyyy``, ``dd-mm-yy``, ``d Mon yyyy``,
  ``yyyymmdd`` and similar, always day-first (UK practice).
* ``sex`` — ``m`` or ``f``; codes for "not known" become missing.
* ``uk_postcode`` — ``OUTWARD INWARD`` in capitals; pseudo-postcodes (``ZZ99``) and values
  that start like a UK postcode but do not parse become missing and are counted as invalid;
  postcodes of other countries (a digit, not UK-shaped) are kept as upper-case text.
* ``nhs_number`` — ten digits; anything else becomes missing and is counted as invalid.
* ``text`` — lower-case ASCII-folded text with single spaces.
* ``identifier`` — a person's number in some register (social security, hospital, client
  number): lower-case ASCII letters and digits, spaces, dashes, dots and slashes removed.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Normalised:
    """Canonical values (null = missing) and which inputs were present but not usable."""

    values: pa.Array
    invalid: np.ndarray  # bool per input value
    # Questionable values kept or dropped, by kind (e.g. "not_uk", "implausible"): counted in
    # the encode summary so the data manager sees them.
    flags: dict[str, np.ndarray] = field(default_factory=dict)


TITLES = (
    "mr", "mrs", "ms", "miss", "mx", "master", "dr", "prof", "professor", "rev", "revd",
    "reverend", "sir", "dame", "lady", "lord", "fr", "father", "sr", "jr", "jnr", "snr",
    "ii", "iii", "iv",
)
_TITLE_RE = r"\b(?:" + "|".join(TITLES) + r")\b"
_EMPTY_MARKERS = ("", "unknown", "not known", "n/a", "na", "none", "null", "nk", "nfa")


def _blank_to_null(values: pa.Array) -> pa.Array:
    """Empty strings become null, so that 'missing' has one representation."""
    empty = pc.equal(pc.utf8_length(values), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), values)


def _fold(values: pa.Array) -> pa.Array:
    """Lower-case and strip accents (NFKD, then drop combining marks); keep other scripts."""
    values = pc.utf8_normalize(values, "NFKD")
    values = pc.replace_substring_regex(values, r"\p{Mn}", "")
    return pc.utf8_lower(values)


def _squash_spaces(values: pa.Array) -> pa.Array:
    values = pc.replace_substring_regex(values, r"\s+", " ")
    return pc.utf8_trim_whitespace(values)


def _all(flags: pa.Array) -> bool:
    """True when no flag is false (nulls ignored; an empty array counts as all true)."""
    return pc.all(flags).as_py() is not False


def _no_invalid(values: pa.Array) -> np.ndarray:
    return np.zeros(len(values), dtype=bool)


def _as_strings(values: pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def person_name(values: pa.Array) -> Normalised:
    """Canonical person name (given or family): see the module docstring."""
    v = _fold(_as_strings(values))
    v = pc.replace_substring_regex(v, r"[’'`´]", "")          # O'Brien -> obrien
    v = pc.replace_substring_regex(v, r"[^\p{L}\p{N}]+", " ")  # hyphens, dots, commas
    v = _squash_spaces(v)
    # Titles and suffixes, but never the whole name ("Miss" alone stays a name).
    stripped = _squash_spaces(pc.replace_substring_regex(v, _TITLE_RE, " "))
    v = pc.if_else(pc.greater(pc.utf8_length(stripped), 0), stripped, v)
    v = pc.replace_substring_regex(v, r"\b(mc|mac) (\p{L}{2,})", r"\1\2")  # Mc Donald
    v = pc.if_else(pc.is_in(v, pa.array(_EMPTY_MARKERS)), pa.scalar(None, pa.string()), v)
    return Normalised(_blank_to_null(v), _no_invalid(v))


def text(values: pa.Array) -> Normalised:
    """Generic free text: fold case and accents, squash whitespace."""
    v = _squash_spaces(_fold(_as_strings(values)))
    return Normalised(_blank_to_null(v), _no_invalid(v))


def identifier(values: pa.Array) -> Normalised:
    """Any register number: case folded, separators (space, dash, dot, slash) removed."""
    v = _blank_to_null(pc.replace_substring_regex(_fold(_as_strings(values)), r"[\s\-./]", ""))
    return Normalised(v, _no_invalid(v))


_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")]
    )
    for name in names
}

# Day-first patterns, tried in order. Each names groups y, m (number or word) and d.
_DATE_PATTERNS = (
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[ t].*)?$",
    r"^(?P<d>\d{1,2})[-/. ](?P<m>\d{1,2})[-/. ](?P<y>\d{4}|\d{2})(?: .*)?$",
    r"^(?P<d>\d{1,2})(?:st|nd|rd|th)?[-/. ]*(?P<m>[a-z]{3,9})[-/., ]*(?P<y>\d{4}|\d{2})$",
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$",
)


def _two_digit_year(years: np.ndarray, had_two_digits: np.ndarray, pivot: int) -> np.ndarray:
    """'05' -> 2005 and '67' -> 1967: the latest century that is not in the future."""
    century_2000 = 2000 + years
    resolved = np.where(century_2000 <= pivot, century_2000, 1900 + years)
    return np.where(had_two_digits, resolved, years)


def parse_dates(values: pa.Array, pivot_year: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse day-first date strings into year, month, day integer arrays (0 where unusable).

    Returns (year, month, day) with 0 for missing or invalid values; the caller tells
    the two apart with the null mask of the input.
    """
    pivot = pivot_year if pivot_year is not None else _dt.date.today().year
    v = pc.utf8_trim_whitespace(pc.utf8_lower(_as_strings(values)))
    n = len(v)
    year = np.zeros(n, dtype=np.int64)
    month = np.zeros(n, dtype=np.int64)
    day = np.zeros(n, dtype=np.int64)
    two_digit = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    month_names = pa.array(list(_MONTHS))
    month_numbers = np.array(list(_MONTHS.values()), dtype=np.int64)
    for pattern in _DATE_PATTERNS:
        if done.all():  # later patterns only ever fill rows not done yet
            break
        found = pc.extract_regex(v, pattern)
        ok = found.is_valid().to_numpy(zero_copy_only=False) & ~done
        if not ok.any():
            continue
        ok_mask = pa.array(ok)
        ys = pc.if_else(ok_mask, found.field("y"), "0")
        year = np.where(ok, pc.cast(ys, pa.int64()).to_numpy(zero_copy_only=False), year)
        two_digit |= ok & (pc.utf8_length(ys).to_numpy(zero_copy_only=False) == 2)
        ds = pc.if_else(ok_mask, found.field("d"), "0")
        day = np.where(ok, pc.cast(ds, pa.int64()).to_numpy(zero_copy_only=False), day)
        ms = pc.if_else(ok_mask, found.field("m"), "0")
        if pc.all(pc.match_substring_regex(ms, r"^[0-9]+$")).as_py():
            month = np.where(ok, pc.cast(ms, pa.int64()).to_numpy(zero_copy_only=False), month)
        else:
            pos = pc.fill_null(pc.index_in(ms, month_names), -1).to_numpy(zero_copy_only=False)
            known = ok & (pos >= 0)
            month = np.where(known, month_numbers[np.maximum(pos, 0)], month)
        done |= ok
    year = _two_digit_year(year, two_digit, pivot)
    valid = done & (month >= 1) & (month <= 12) & (day >= 1) & (year >= 1850) & (year <= 2200)
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    limit = np.where(valid, days_in_month[np.clip(month - 1, 0, 11)] + ((month == 2) & leap), 0)
    valid &= day <= limit
    return np.where(valid, year, 0), np.where(valid, month, 0), np.where(valid, day, 0)


def to_date32(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> pa.Array:
    """Date array from components; entries with year 0 become null."""
    ok = year > 0
    months = (np.where(ok, year, 1970) - 1970) * 12 + np.where(ok, month, 1) - 1
    days = months.astype("datetime64[M]").astype("datetime64[D]") + (np.where(ok, day, 1) - 1)
    return pa.array(days.astype("datetime64[D]"), type=pa.date32(), mask=~ok)


EARLIEST_YEAR = 1900  # a date of birth before this is a typo or a placeholder (1800-01-01)


def date(values: pa.Array, pivot_year: int | None = None, *, plausible_only: bool = True,
         today: _dt.date | None = None) -> Normalised:
    """Canonical ISO date; see :func:`parse_dates` for the formats understood.

    ``plausible_only`` (the field normaliser, for dates of birth): a date in the future or
    before 1900 is unusable — missing, invalid and flagged ``implausible`` — because such
    dates are typos or placeholders that would make unrelated people agree.
    """
    v = _blank_to_null(pc.utf8_trim_whitespace(_as_strings(values)))
    present = v.is_valid().to_numpy(zero_copy_only=False)
    year, month, day = parse_dates(v, pivot_year)
    flags: dict[str, np.ndarray] = {}
    if plausible_only:
        latest = today or _dt.date.today()
        stamp = year * 10000 + month * 100 + day
        implausible = (year > 0) & ((year < EARLIEST_YEAR) | (stamp > latest.year * 10000 + latest.month * 100 + latest.day))
        flags["implausible"] = implausible
        year = np.where(implausible, 0, year)
    out = to_date32(year, month, day).cast(pa.string())
    return Normalised(out, present & (year == 0), flags)


_SEX_CODES = {
    "m": "m", "male": "m", "1": "m", "man": "m",
    "f": "f", "female": "f", "2": "f", "woman": "f",
}
_SEX_UNKNOWN = ("u", "unknown", "not known", "nk", "0", "9", "x", "not specified",
                "i", "indeterminate", "other", "o", "")


def sex(values: pa.Array) -> Normalised:
    """'m' or 'f'; NHS 'not known'/'not specified' codes are missing; anything else invalid."""
    v = _squash_spaces(pc.utf8_lower(_as_strings(values)))
    keys = pa.array(list(_SEX_CODES))
    mapped_values = pa.array(list(_SEX_CODES.values()))
    pos = pc.index_in(v, keys)
    out = pc.take(mapped_values, pos)
    unknown = pc.is_in(v, pa.array(_SEX_UNKNOWN)).to_numpy(zero_copy_only=False)
    present = v.is_valid().to_numpy(zero_copy_only=False)
    recognised = pos.is_valid().to_numpy(zero_copy_only=False)
    return Normalised(out, present & ~recognised & ~unknown)


_POSTCODE_RE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$"
_UK_START_RE = r"^(?:[A-Z]{1,2}[0-9]|GIR)"  # every UK postcode starts so (GIR 0AA too); a typo of one still does


def uk_postcode(values: pa.Array) -> Normalised:
    """'SW1A 1AA' form; ZZ99 pseudo-postcodes ('no fixed abode') and non-postcodes -> missing.

    A value with a digit that does not start like a UK postcode (letters then a digit) is a
    postcode of another country (4223, 90210-1234, 1011 AB): kept as upper-case text with
    single spaces, so non-UK data still links, and flagged ``not_uk``. Values that start like
    a UK postcode but do not parse stay missing and invalid, as before.
    """
    v = pc.utf8_upper(_as_strings(values))
    without_spaces = pc.replace_substring(v, " ", "")
    if _all(pc.or_kleene(pc.ascii_is_alnum(without_spaces), pc.equal(pc.utf8_length(without_spaces), 0))):
        compact = _blank_to_null(without_spaces)  # only spaces to remove: no regex needed
    else:
        compact = _blank_to_null(pc.replace_substring_regex(v, r"[^A-Z0-9]", ""))
    well_formed = pc.match_substring_regex(compact, _POSTCODE_RE)
    pseudo = pc.starts_with(compact, "ZZ99")
    keep = pc.and_(well_formed, pc.invert(pseudo))
    # Where the pattern matched, the inward code is the last three characters.
    spaced = pc.binary_join_element_wise(pc.utf8_slice_codeunits(compact, 0, -3),
                                         pc.utf8_slice_codeunits(compact, -3), " ")
    out = pc.if_else(keep, spaced, pa.scalar(None, pa.string()))
    present = compact.is_valid().to_numpy(zero_copy_only=False)
    not_uk = pc.and_kleene(pc.invert(pc.match_substring_regex(compact, _UK_START_RE)),
                           pc.match_substring_regex(compact, r"[0-9]"))
    not_uk = pc.fill_null(not_uk, False)
    if pc.any(not_uk).as_py():
        as_text = _squash_spaces(pc.replace_substring_regex(v, r"[^A-Z0-9]+", " "))
        out = pc.if_else(not_uk, as_text, out)
    ok = out.is_valid().to_numpy(zero_copy_only=False)
    return Normalised(out, present & ~ok, {"not_uk": not_uk.to_numpy(zero_copy_only=False)})


def nhs_number(values: pa.Array) -> Normalised:
    """Ten digits (spaces and dashes removed); other lengths are invalid and missing."""
    v = _as_strings(values)
    if _all(pc.or_kleene(pc.ascii_is_decimal(v), pc.equal(pc.utf8_length(v), 0))):
        digits = _blank_to_null(v)  # digits only: nothing to remove, ten digits = length ten
        ok = pc.equal(pc.utf8_length(digits), 10)
    else:
        digits = _blank_to_null(pc.replace_substring_regex(v, r"[\s\-]", ""))
        ok = pc.match_substring_regex(digits, r"^[0-9]{10}$")
    out = pc.if_else(ok, digits, pa.scalar(None, pa.string()))
    present = digits.is_valid().to_numpy(zero_copy_only=False)
    return Normalised(out, present & ~out.is_valid().to_numpy(zero_copy_only=False))


def nhs_check_digit_ok(number: str) -> bool:
    """Modulus-11 check of a ten-digit NHS number (used by synth and tests)."""
    if len(number) != 10 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(number[9])


NORMALISERS: dict[str, Callable[[pa.Array], Normalised]] = {
    "person_name": person_name,
    "date": date,
    "sex": sex,
    "uk_postcode": uk_postcode,
    "nhs_number": nhs_number,
    "text": text,
    "identifier": identifier,
}

# Normalisers whose unusable values are an error by default (the contract): a date
# or sex code that cannot be read usually means a wrong column mapping or a wrong format.
STRICT_NORMALISERS = frozenset({"date", "sex"})
