"""Chaining blocking tokens that share a name part into name-code classes over the population.

Each format-2 token is one keyed hash over all its parts, so no token splits. But two keys
that share a part derived from one name — (family soundex, birthday) and (family soundex,
postcode sector), say — chain: union-find over records that share a token of either key
joins everyone with one soundex code whose birthdays and sectors connect, and once a code
is common enough (a few hundred people) that is nearly all of them. A key holding the
exact name (the full-name key) only joins records whose codes are already equal, so it
chains too (though an unordered one also joins swapped names, so both are tried). The components are then a frequency table of codes over the whole population,
however the keys are salted: ranked by persons and lined up with the public list's codes,
each record is named with the commonest listed name of its code (of its birth year, when
the attacker knows it).

Keys that chain into one code class can leave several components per code (a code's
records split by birth month when both keys carry the month), so the alignment tries
``REPLICAS`` components per code and the audit keeps the attacker's best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from simlink.agency.blocking import derive_array
from simlink.audit.encoded import Corpus
from simlink.audit.reference import Reference
from simlink.audit.structure import components
from simlink.schema import Schema

REPLICAS = (1, 2, 4, 12)  # components per code the alignment tries (12: split by birth month)
MAX_CODES = 500


@dataclass(frozen=True)
class KeyChain:
    """Keys whose tokens all imply equal ``derivation`` of ``field``: union-find over them
    gives classes pure in that code."""

    field: str
    derivation: str
    keys: tuple[str, ...]


def exact_keys(schema: Schema, present: list[str], field_name: str) -> list[str]:
    """Present keys holding ``field_name``'s exact value: equal tokens imply equal names (up to
    swaps, for unordered keys), so they join name classes across scopes."""
    return [k.name for k in schema.blocking if k.name in present
            and any(p.partition(":")[0] == field_name and p.partition(":")[2] == "value" for p in k.parts)]


def chains(schema: Schema, present: list[str], field_name: str) -> list[KeyChain]:
    """Per derivation of ``field_name`` found in a present key: that key with every other key
    holding the same derivation or the exact value (which implies it). Only sets of two or more
    keys chain; a single key is the blocking-token frequency attack's business."""
    by_derivation: dict[str, list[str]] = {}
    exact = exact_keys(schema, present, field_name)
    for key in schema.blocking:
        if key.name not in present:
            continue
        for part in key.parts:
            field, _, derivation = part.partition(":")
            if field == field_name and derivation != "value":
                by_derivation.setdefault(derivation, []).append(key.name)
    out = []
    for derivation, keys in by_derivation.items():
        # With and without the exact-name keys: an unordered full-name key also joins swapped
        # names, which can merge codes into one giant class; the attacker tries both.
        for members in (tuple(keys), tuple(dict.fromkeys(keys + exact))):
            if len(members) >= 2 and members not in [c.keys for c in out]:
                out.append(KeyChain(field_name, derivation, members))
    return out


def chain_classes(corpus: Corpus, chain: KeyChain) -> np.ndarray:
    """Per record the component of the chained tokens (-1 = no token of the chain)."""
    tokens = [corpus.tokens(k) for k in chain.keys]
    has = np.zeros(corpus.rows, bool)
    for t in tokens:
        has |= t != 0
    return np.where(has, components(corpus.rows, tokens), -1)


def _coded(listed: dict[str, float], derivation: str, normaliser: str) -> pd.DataFrame:
    """A list's names with their code and share (names without a code dropped)."""
    names = list(listed)
    codes = derive_array(normaliser, derivation, pa.array(names, pa.string())).to_pylist()
    return pd.DataFrame({"name": names, "code": codes, "share": [listed[n] for n in names]}).dropna(subset=["code"])


def _name_by_code(reference: Reference, field_name: str, derivation: str, normaliser: str,
                  years: np.ndarray) -> dict[int, dict[str, str]]:
    """Commonest listed name per code, per birth year (-1: the national list)."""
    out: dict[int, dict[str, str]] = {}
    for year in [-1, *sorted({int(y) for y in years if y >= 0})]:
        listed = reference.names_in_year(field_name, year) if year >= 0 else reference.names(field_name)
        if not listed:
            continue
        table = _coded(dict(list(listed.items())[:3000]), derivation, normaliser)
        top = table.sort_values("share", ascending=False).drop_duplicates("code")
        out[year] = dict(zip(top["code"], top["name"]))
    return out


def chain_guesses(corpus: Corpus, chain: KeyChain, persons: np.ndarray, year: np.ndarray,
                  reference: Reference, normaliser: str) -> list[tuple[np.ndarray, dict]]:
    """One guess array per replica count: (per-record name or None, detail with the count)."""
    labels = chain_classes(corpus, chain)
    has = labels >= 0
    if not has.any():
        return []
    frame = pd.DataFrame({"label": labels[has], "person": np.where(persons[has] >= 0, persons[has], -1 - np.arange(has.sum()))})
    size = frame.groupby("label")["person"].nunique().sort_values(ascending=False, kind="stable")
    codes = _coded(reference.names(chain.field), chain.derivation, normaliser)
    code_rank = codes.groupby("code")["share"].sum().sort_values(ascending=False).index[:MAX_CODES].tolist()
    named = _name_by_code(reference, chain.field, chain.derivation, normaliser, year[has])
    detail = {"keys": list(chain.keys), "derivation": chain.derivation,
              "components": int(len(size)), "largest_component_persons": int(size.iloc[0])}
    out = []
    for replicas in REPLICAS:
        ranked = size.index[: replicas * len(code_rank)]
        ranked = ranked[size.loc[ranked].to_numpy() >= 2]  # a class of one person says nothing about frequency
        code_of_label = pd.Series([code_rank[i // replicas] for i in range(len(ranked))], index=ranked)
        record_code = pd.Series(labels[has]).map(code_of_label).to_numpy(dtype=object)
        record_year = year[has]
        guesses = np.full(corpus.rows, None, dtype=object)
        picked = np.full(len(record_code), None, dtype=object)
        for y in np.unique(record_year):
            table = named.get(int(y)) or named.get(-1, {})
            sel = (record_year == y) & pd.notna(record_code)
            picked[sel] = [table.get(c) for c in record_code[sel]]
        guesses[np.flatnonzero(has)] = picked
        out.append((guesses, {**detail, "replicas": replicas}))
    return out
