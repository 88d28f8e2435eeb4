"""Name-frequency tables for the synthetic population, sampled with numpy.

The bundled tables (``simlink/synth/data``) list names by origin with a count per million
people, Zipf-like within each origin. Surnames also get a generated long tail of rare names
(stems + suffixes of the same origin), because real surname distributions are dominated in
number by names held by a handful of people — and rare names are what make linkage easy,
common ones what make it hard. The tables are written for simlink from general knowledge;
they are not an official frequency list.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

TAIL_ZIPF_EXPONENT = 1.0


@dataclass(frozen=True)
class Sampler:
    """Names and cumulative probabilities for inverse-CDF sampling."""

    names: np.ndarray  # object array of str
    cumulative: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = np.searchsorted(self.cumulative, rng.random(n) * self.cumulative[-1], side="right")
        return self.names[np.minimum(idx, len(self.names) - 1)]


@dataclass(frozen=True)
class NameTables:
    origins: tuple[str, ...]
    origin_share: np.ndarray
    given: dict[tuple[str, str], Sampler]   # (sex "M"/"F", origin) -> sampler
    surname: dict[str, Sampler]             # origin -> sampler (listed + tail)
    nicknames: dict[str, tuple[str, ...]]   # formal -> nicknames


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("simlink.synth").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _sampler(names: list[str], weights: list[float]) -> Sampler:
    return Sampler(np.array(names, dtype=object), np.cumsum(np.asarray(weights, dtype=float)))


def _tail_names(parts: list[dict[str, str]], origin: str) -> list[str]:
    stems = [p["parts"].split() for p in parts if p["origin"] == origin and p["kind"] == "stem"]
    suffixes = [p["parts"].split() for p in parts if p["origin"] == origin and p["kind"] == "suffix"]
    mids = [p["parts"].split() for p in parts if p["origin"] == origin and p["kind"] == "mid"]
    if not stems or not suffixes:
        return []
    keep_case = lambda stem: stem.endswith("'") or stem in ("Mc", "Mac")  # noqa: E731
    names = {stem + (suffix if keep_case(stem) else suffix.lower())
             for stem in stems[0] for suffix in suffixes[0]}
    for mid in (mids[0] if mids else []):
        names |= {stem + mid + suffix.lower() for stem in stems[0] if not keep_case(stem) for suffix in suffixes[0]}
    # A fixed pseudo-random rank order (not alphabetical) so the Zipf tail mixes stems.
    return sorted(names, key=lambda s: (zlib.crc32(s.encode("utf-8")), s))


@lru_cache(maxsize=1)
def load_tables() -> NameTables:
    """Read the bundled tables once per process."""
    origin_rows = _read_csv("origins.csv")
    origins = tuple(r["origin"] for r in origin_rows)
    share = np.array([float(r["share"]) for r in origin_rows])
    share = share / share.sum()

    given: dict[tuple[str, str], Sampler] = {}
    for sex, file in (("M", "given_male.csv"), ("F", "given_female.csv")):
        rows = _read_csv(file)
        british = [r for r in rows if r["origin"] == "british"]
        for origin in origins:
            chosen = [r for r in rows if r["origin"] == origin] or british
            given[(sex, origin)] = _sampler([r["name"] for r in chosen],
                                            [float(r["count_per_million"]) for r in chosen])

    parts = _read_csv("surname_parts.csv")
    rows = _read_csv("surnames.csv")
    surname: dict[str, Sampler] = {}
    for origin, origin_share in zip(origins, share):
        listed = [r for r in rows if r["origin"] == origin]
        names = [r["name"] for r in listed]
        weights = [float(r["count_per_million"]) for r in listed]
        tail = _tail_names(parts, origin)
        tail_mass = origin_share * 1e6 - sum(weights)
        if tail and tail_mass > 0:
            # The tail continues the Zipf curve after the listed names.
            ranks = np.arange(len(listed) + 1, len(listed) + len(tail) + 1, dtype=float) ** -TAIL_ZIPF_EXPONENT
            names += tail
            weights += list(tail_mass * ranks / ranks.sum())
        surname[origin] = _sampler(names, weights)

    nicknames: dict[str, list[str]] = {}
    for r in _read_csv("nicknames.csv"):
        nicknames.setdefault(r["formal"], []).append(r["nickname"])
    return NameTables(origins, share, given, surname, {k: tuple(v) for k, v in nicknames.items()})


def sample_by_group(rng: np.random.Generator, groups: np.ndarray, samplers: dict) -> np.ndarray:
    """Draw one name per row from the sampler of the row's group (vectorised per group)."""
    out = np.empty(len(groups), dtype=object)
    for key in sorted(np.unique(groups).tolist()):
        mask = groups == key
        out[mask] = samplers[key].sample(rng, int(mask.sum()))
    return out
