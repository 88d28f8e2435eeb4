"""Crisis contacts of the synthetic people: how many, with which service, when.

Three features of real crisis data matter for linkage and for the counts, and are modelled
on purpose:

* **Heavy-tailed contacts per person.** Most people have one contact in the period; a few
  ("high intensity users") have dozens. Counts are a truncated Zipf draw.
* **Correlated services.** Each person has their own mix of services (a Dirichlet draw with
  low concentration around the overall service shares), so one person tends to meet the same
  one to three services again and again.
* **Bursts.** Contacts cluster in a few episodes (a crisis brings police, ambulance and ED
  within days); each contact falls near one of the person's episode dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SERVICES = ("police", "ambulance", "ed", "mental_health")


@dataclass(frozen=True)
class ContactModel:
    """Parameters of the contact model (defaults calibrated in docs/synthetic-data.md)."""

    zipf_exponent: float = 2.15       # contacts per person ~ Zipf(a), truncated
    max_contacts: int = 200
    service_share: tuple[float, ...] = (0.25, 0.27, 0.33, 0.15)  # police, ambulance, ed, mh
    concentration: float = 0.5        # Dirichlet concentration: lower = more specialised people
    episodes_per_contact: float = 0.2  # extra episodes per additional contact
    burst_days: float = 6.0           # median spread of contacts around an episode (days)


@dataclass
class Contacts:
    """One row per contact: index of the person in the block, service code, day offset."""

    person_index: np.ndarray  # int64, index into the People block
    service: np.ndarray       # int8, index into SERVICES
    day: np.ndarray           # int64, days since the start of the period
    minute: np.ndarray        # int64, minute of the day (for timestamped formats)


def contacts_per_person(rng: np.random.Generator, n: int, model: ContactModel) -> np.ndarray:
    return np.minimum(rng.zipf(model.zipf_exponent, n), model.max_contacts).astype(np.int64)


def make_contacts(rng: np.random.Generator, n_people: int, period_days: int,
                  model: ContactModel = ContactModel()) -> Contacts:
    """Draw every contact of a block of ``n_people`` over ``period_days`` days."""
    counts = contacts_per_person(rng, n_people, model)
    person = np.repeat(np.arange(n_people, dtype=np.int64), counts)
    total = len(person)

    # Person-level service mix, then one service per contact by inverse CDF.
    alpha = np.asarray(model.service_share) * len(SERVICES) * model.concentration
    mix = rng.dirichlet(alpha, n_people)
    cumulative = np.cumsum(mix, axis=1)[person]
    service = (rng.random(total)[:, None] > cumulative).sum(axis=1).clip(0, len(SERVICES) - 1).astype(np.int8)

    # Episodes: 1 + Poisson(extra contacts x rate), capped by the number of contacts.
    episodes = np.minimum(1 + rng.poisson(model.episodes_per_contact * (counts - 1)), counts)
    centres_start = np.concatenate(([0], np.cumsum(episodes)[:-1]))
    centres = rng.integers(0, period_days, int(episodes.sum()))
    which = centres_start[person] + (rng.random(total) * episodes[person]).astype(np.int64)
    spread = rng.lognormal(np.log(model.burst_days), 1.0, total)
    offset = np.rint(rng.exponential(1.0, total) * spread).astype(np.int64)
    centre = centres[which]
    day = centre + offset
    late = day >= period_days
    day[late] = np.maximum(centre[late] - offset[late], 0)  # reflect bursts at the period end
    minute = rng.integers(0, 24 * 60, total)
    return Contacts(person, service, day, minute)
