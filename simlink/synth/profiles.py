"""Error rates and recording styles per agency, with the low/medium/high presets.

An :class:`ErrorRates` holds one probability per kind of error. Each rate is the chance that
a record *where the error can happen* gets it (a day/month swap needs a day of 12 or less, a
hyphenated name is needed to record only part of it, ...): the generator records both which
errors could apply and which were applied, so tests can check the observed rates.

Agencies differ: police records are the poorest (more missing dates of birth, aliases, name
swaps, no NHS numbers), mental-health records the best. Each agency also has a recording
*style* — date formats, sex codes, letter case — which is not an error: the normalisers are
expected to read every style.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from simlink.defaults import ERROR_LEVELS

AGENCIES = ("police", "ambulance", "ed", "mental_health")
LEVELS = ERROR_LEVELS


@dataclass(frozen=True)
class ErrorRates:
    """Probability of each error per record (among records where it can happen)."""

    alias: float = 0.0             # a different name altogether
    family_change: float = 0.0     # the person's other family name (marriage, divorce)
    hyphen_partial: float = 0.0    # one part of a double-barrelled family name
    nickname: float = 0.0          # Robert -> Bob
    initial_only: float = 0.0      # given name reduced to its initial
    name_swap: float = 0.0         # given and family name exchanged
    typo_given: float = 0.0        # one insert/delete/substitute/transpose
    typo_family: float = 0.0
    dob_day_month_swap: float = 0.0
    dob_wrong_year: float = 0.0
    postcode_moved: float = 0.0    # the person's other address
    nhs_typo: float = 0.0          # one digit wrong or two digits transposed
    case_noise: float = 0.0        # letter case unlike the agency's usual style
    whitespace_noise: float = 0.0  # stray spaces around or inside a name
    sex_unknown: float = 0.0       # a "not known" code
    postcode_nfa: float = 0.0      # no fixed abode: ZZ99 pseudo-postcode
    missing_given: float = 0.0
    missing_family: float = 0.0
    missing_dob: float = 0.0
    missing_sex: float = 0.0
    missing_postcode: float = 0.0
    missing_nhs: float = 0.0

    def scaled(self, factor: float, cap: float = 0.9) -> "ErrorRates":
        return ErrorRates(**{f.name: min(cap, getattr(self, f.name) * factor) for f in fields(self)})

    def with_rates(self, **rates: float) -> "ErrorRates":
        return replace(self, **rates)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ERROR_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ErrorRates))
ERROR_BIT = {name: 1 << i for i, name in enumerate(ERROR_NAMES)}

# Medium level for an emergency department; other agencies scale from it.
_MEDIUM = ErrorRates(
    alias=0.0, family_change=0.25, hyphen_partial=0.3, nickname=0.05, initial_only=0.01,
    name_swap=0.01, typo_given=0.03, typo_family=0.03, dob_day_month_swap=0.02,
    dob_wrong_year=0.01, postcode_moved=0.15, nhs_typo=0.01, case_noise=0.05,
    whitespace_noise=0.05, sex_unknown=0.01, postcode_nfa=0.005, missing_given=0.005,
    missing_family=0.005, missing_dob=0.02, missing_sex=0.01, missing_postcode=0.04,
    missing_nhs=0.0,
)
_LEVEL_FACTOR = {"low": 0.4, "medium": 1.0, "high": 2.0}
_AGENCY_FACTOR = {"police": 1.6, "ambulance": 1.2, "ed": 1.0, "mental_health": 0.5}
# Rates that are a property of the agency's systems more than of data quality, at medium.
_AGENCY_SPECIFIC = {
    "police": dict(alias=0.03, missing_nhs=0.85, missing_dob=0.08, name_swap=0.03, postcode_nfa=0.02),
    "ambulance": dict(alias=0.005, missing_nhs=0.45, missing_dob=0.04),
    "ed": dict(missing_nhs=0.12),
    "mental_health": dict(missing_nhs=0.02),
}
# NHS-number coverage depends on systems, not on the level: scaled gently.
_NHS_LEVEL_FACTOR = {"low": 0.8, "medium": 1.0, "high": 1.1}


def preset(level: str = "medium") -> dict[str, ErrorRates]:
    """Per-agency error rates for a named level."""
    if level not in LEVELS:
        raise ValueError(f"unknown error level (choose from {', '.join(LEVELS)})")
    out = {}
    for agency in AGENCIES:
        factor = _LEVEL_FACTOR[level] * _AGENCY_FACTOR[agency]
        specific = dict(_AGENCY_SPECIFIC[agency])
        missing_nhs = specific.pop("missing_nhs")
        rates = _MEDIUM.with_rates(**specific).scaled(factor)
        out[agency] = rates.with_rates(missing_nhs=min(0.95, missing_nhs * _NHS_LEVEL_FACTOR[level]))
    return out


@dataclass(frozen=True)
class AgencyStyle:
    """How an agency's system writes values (all readable by simlink's normalisers)."""

    name_case: str            # "upper", "title" or "as_is"
    missing_name: str         # what is written for a missing name ("" = empty)
    dob_format: str           # strftime format; "%-d" is emulated portably
    contact_format: str
    sex_codes: tuple[str, str, str]  # male, female, not known
    postcode_compact: bool    # "LE17RH" rather than "LE1 7RH"
    nhs_spaced: bool          # "485 777 3456"
    ascii_only: bool          # accents dropped by the system


STYLES = {
    "police": AgencyStyle("upper", "UNKNOWN", "%d/%m/%Y", "%d/%m/%Y %H:%M", ("M", "F", "U"), True, False, True),
    "ambulance": AgencyStyle("as_is", "", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", ("Male", "Female", "Unknown"), False, False, True),
    "ed": AgencyStyle("title", "", "%-d %b %Y", "%d-%m-%y", ("1", "2", "9"), False, True, False),
    "mental_health": AgencyStyle("as_is", "", "%Y%m%d", "%Y-%m-%d", ("M", "F", "X"), False, False, False),
}
