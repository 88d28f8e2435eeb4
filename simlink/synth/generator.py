"""The synthetic world, block by block: people, their contacts, and what each agency recorded.

Everything is drawn from a generator seeded by ``(seed, block index)``, so the output depends
only on the seed and the settings (including ``block_size``), never on timing or threads.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from simlink.synth.contacts import SERVICES, ContactModel, make_contacts
from simlink.synth.errors import AgencyRecords, record_agency
from simlink.synth.names import load_tables
from simlink.synth.population import People, make_people
from simlink.synth.profiles import AGENCIES, STYLES, ErrorRates, preset

RECORD_ID_PREFIX = {"police": "CAD", "ambulance": "AMB", "ed": "ED", "mental_health": "MH"}
RECORD_ID_SPACE = 10**9


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the synthetic output."""

    people: int
    seed: int = 0
    errors: str | Mapping[str, ErrorRates] = "medium"
    start: _dt.date = _dt.date(2024, 1, 1)
    end: _dt.date = _dt.date(2025, 12, 31)
    block_size: int = 50_000
    contacts: ContactModel = field(default_factory=ContactModel)

    def rates(self) -> dict[str, ErrorRates]:
        if isinstance(self.errors, str):
            return preset(self.errors)
        missing = [a for a in AGENCIES if a not in self.errors]
        if missing:
            raise ValueError(f"error rates missing for agency {missing[0]}")
        return dict(self.errors)

    @property
    def period_days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class AgencyBlock:
    """One agency's records from one block of people."""

    record_id: np.ndarray     # object array of str
    person_id: np.ndarray     # int64
    contact_day: np.ndarray   # datetime64[D] (true contact date)
    contact_minute: np.ndarray
    records: AgencyRecords


@dataclass
class Block:
    index: int
    people: People
    agencies: dict[str, AgencyBlock]


def draw_record_ids(rng: np.random.Generator, agency: str, n: int, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Agency reference numbers: random draws, unique within the agency.

    Drawn at random (not from a counter) so that an id carries no identifier and no hint of
    which person, block or contact it belongs to. ``used`` is the sorted array of numbers
    already issued; the updated array is returned.
    """
    numbers = np.empty(0, dtype=np.int64)
    while len(numbers) < n:
        fresh = rng.integers(0, RECORD_ID_SPACE, n - len(numbers))
        pos = np.minimum(np.searchsorted(used, fresh), max(len(used) - 1, 0))
        taken = (used[pos] == fresh) if len(used) else np.zeros(len(fresh), dtype=bool)
        numbers = np.concatenate([numbers, fresh[~taken]])
        order = np.argsort(numbers, kind="stable")
        repeat = np.zeros(len(numbers), dtype=bool)
        repeat[order[1:]] = numbers[order[1:]] == numbers[order[:-1]]  # keep the first draw of a value
        numbers = numbers[~repeat]
    used = np.sort(np.concatenate([used, numbers]))
    text = np.char.add(RECORD_ID_PREFIX[agency], np.char.zfill(numbers.astype(str), 9)).astype(object)
    return text, used


def iter_blocks(config: SynthConfig) -> Iterator[Block]:
    """Yield the synthetic world one block of people at a time."""
    if config.people < 1:
        raise ValueError("people must be at least 1")
    if config.end < config.start:
        raise ValueError("end of period is before its start")
    rates = config.rates()
    tables = load_tables()
    start = np.datetime64(config.start, "D")
    used = {a: np.empty(0, dtype=np.int64) for a in AGENCIES}
    for index, first in enumerate(range(0, config.people, config.block_size)):
        n = min(config.block_size, config.people - first)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
        people = make_people(rng, first + 1, n, config.seed, start, tables)
        contacts = make_contacts(rng, n, config.period_days, config.contacts)
        agencies = {}
        for code, agency in enumerate(SERVICES):
            mask = contacts.service == code
            idx = contacts.person_index[mask]
            day = start + contacts.day[mask].astype("timedelta64[D]")
            minute = contacts.minute[mask]
            records = record_agency(rng, people, idx, day, minute, rates[agency], STYLES[agency], tables)
            ids, used[agency] = draw_record_ids(rng, agency, len(idx), used[agency])
            agencies[agency] = AgencyBlock(ids, people.person_id[idx], day, minute, records)
        yield Block(index, people, agencies)
