"""Linked counts about people with crisis contacts, released under disclosure control.

``release(db)`` is the one call a user (or ``simlink demo``) needs; ``compute_measures``
gives the raw, UNPROTECTED measures for synthetic truth and evaluation only.
"""

from simlink.counts.disclosure import DisclosurePolicy, discrete_laplace, protect
from simlink.counts.measures import (
    CONTACT_BANDS, KNOWN_SERVICES, MEASURE_NAMES, RepeatRule, Scope, compute_measures,
    measures_from_db,
)
from simlink.counts.ledger import DEFAULT_TOTAL_EPSILON, EarlierRelease, LedgerError
from simlink.counts.release import Release, protect_measures, release
from simlink.counts.report import write_report

__all__ = [
    "CONTACT_BANDS", "DEFAULT_TOTAL_EPSILON", "KNOWN_SERVICES", "MEASURE_NAMES",
    "DisclosurePolicy", "EarlierRelease", "LedgerError", "Release", "RepeatRule", "Scope", "compute_measures", "discrete_laplace", "measures_from_db", "protect",
    "protect_measures", "release", "write_report",
]
