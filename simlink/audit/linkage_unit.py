"""Attacks as the linkage unit would run them: every agency's file at once, the public
manifest, public name lists (national and by year of birth), keys of its own, and the
persons of its own linkage.

Each attack puts a name guess on records; :mod:`simlink.audit.verdict` scores them.

* ``structural``: undo balancing, recover salt groups from equal salt-fixing blocking tokens
  across all files, then align equal-filter classes with the list of the group's birth year,
  keeping names whose predicted popcount fits (three steps, issue 9);
* ``equality_by_year``: the same alignment with groups by the birth year the attacker is
  assumed to know;
* ``popcount``: each filter named with the commonest name of its year whose predicted
  popcount fits;
* ``similarity``: similarity clusters (MinHash LSH, Dice cut, union-find) ranked by persons;
  several cuts are tried and the best is kept, as a strong attacker tuning on its own
  encodings would;
* ``chaining``: records linked into one person tie together that person's filters across
  copies, scopes and files; union-find over (filter class, person) grows name classes that
  cross salt groups, then aligned;
* ``token_chain``: blocking keys sharing a name part — (family soundex, birthday) and (family
  soundex, postcode sector) — chain through equal tokens into one class per code over the
  whole population, ranked by persons and aligned with the list's codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from simlink.agency.blocking import derive_array

from simlink.agency.bloom import unpack
from simlink.audit.align import AlignOptions, align, popcount_guess
from simlink.audit.encoded import Corpus, FilterGroup
from simlink.audit.own_key import encode_list
from simlink.audit.reference import NAME_FIELDS, Reference
from simlink.audit.similarity import clusters
from simlink.audit.structure import components, salt_groups, unbalance
from simlink.audit.token_chain import chain_guesses, chains, exact_keys
from simlink.audit.token_split import split_classes, split_keys

DICE_CUTS = (0.6, 0.7, 0.8, 0.9, 0.95)
CHAIN_MIN_PERSONS = (1, 20, 100)
MAX_LIST = 3000


@dataclass(frozen=True)
class FilterView:
    """One stored filter as the attacker reads it: equality class and popcount per record,
    with balancing undone where it could be."""

    group: FilterGroup
    eq_class: np.ndarray  # per record, -1 = no filter
    pop: np.ndarray  # per record, popcount of the (unbalanced) filter, -1 = none
    bits: np.ndarray  # (distinct, bits) of the unbalanced filters
    balanced: bool


def filter_view(corpus: Corpus, group: FilterGroup) -> FilterView:
    words = corpus.words(group)
    present = corpus.present(group)
    eq = np.full(corpus.rows, -1, np.int64)
    pop = np.full(corpus.rows, -1, np.int64)
    if not present.any():
        return FilterView(group, eq, pop, np.zeros((0, group.words * 64), bool), False)
    distinct, inverse = np.unique(words[present], axis=0, return_inverse=True)
    bits, balanced = unbalance(unpack(distinct))
    eq[present] = inverse.reshape(-1)
    pop[present] = bits.sum(axis=1)[inverse.reshape(-1)]
    return FilterView(group, eq, pop, bits, balanced)


@dataclass
class Guesses:
    """One attack's guess per record for one field, and how it was made."""

    attack: str
    field: str
    guesses: np.ndarray
    detail: dict = field(default_factory=dict)


@dataclass
class Attacker:
    """The linkage unit's knowledge: the corpus, its persons, the birth year it is assumed
    to know per record (-1 unknown), the public list and its own encodings of the list."""

    corpus: Corpus
    persons: np.ndarray
    year: np.ndarray
    reference: Reference
    options: AlignOptions = AlignOptions()
    structure: dict = field(default_factory=dict)

    def list_names(self, field_name: str) -> list[str]:
        names = dict.fromkeys(list(self.reference.names(field_name))[:MAX_LIST])
        for table in self.reference.by_year.get(field_name, {}).values():
            names.update(dict.fromkeys(list(table)[:200]))
        return list(names)

    def predicted(self, field_name: str) -> dict[str, dict[str, float]]:
        """Per stored filter of the field: name -> popcount under the attacker's own key."""
        names = self.list_names(field_name)
        own = encode_list(self.corpus, field_name, names)
        return {g.name: dict(zip(names, own.popcount(g).astype(float).tolist()))
                for g in self.corpus.groups.get(field_name, [])}

    @property
    def year_groups(self) -> dict[int, int]:
        return {int(y): int(y) for y in np.unique(self.year) if y >= 0}

    def attack_field(self, field_name: str) -> list[Guesses]:
        groups = self.corpus.groups.get(field_name, [])
        if not groups or not self.reference.names(field_name):
            return []
        views = [filter_view(self.corpus, g) for g in groups]
        predicted = self.predicted(field_name)
        out: list[Guesses] = []
        for view in views:
            pred = predicted[view.group.name]
            copy = {"filter": view.group.name, "balanced_undone": view.balanced}
            self.structure.setdefault("filters", {})[view.group.name] = {
                "field": field_name, "scope": view.group.scope, "balancing_undone": view.balanced,
                "distinct": int(view.bits.shape[0]), "bits_after_unbalancing": int(view.bits.shape[1])}
            class_pop = _class_values(view.eq_class, view.pop)
            if view.group.scope:
                labels, keys = self._salt_groups(view.group.scope)
                comp_year = _modal_year(labels, self.year)
                out.append(Guesses("structural", field_name, align(
                    view.eq_class, labels, self.persons, self.reference, field_name, comp_year, class_pop, pred,
                    self.options), {**copy, "salt_keys": keys}))
            out.append(Guesses("equality_by_year", field_name, align(
                view.eq_class, self.year, self.persons, self.reference, field_name, self.year_groups, class_pop,
                pred, self.options), copy))
            for tolerance in (0.0, 1.0):
                out.append(Guesses("popcount", field_name, popcount_guess(
                    view.pop, self.year, self.reference, field_name, self.year_groups, pred, tolerance),
                    {**copy, "tolerance": tolerance}))
            out.extend(self._similarity(view, field_name, pred, copy))
        out.extend(self._chaining(views, field_name, predicted))
        out.extend(self._token_split(views[0], field_name, predicted[views[0].group.name]))
        out.extend(self._token_chain(field_name))
        return out

    def _token_chain(self, field_name: str) -> list[Guesses]:
        """Blocking keys that share a name part chain into code classes over the population:
        ranked by persons, aligned with the list's codes, named by the commonest name of the
        code in the record's birth year (``token_chain.py``)."""
        out = []
        normaliser = self.corpus.schema.field(field_name).normaliser
        for chain in chains(self.corpus.schema, self.corpus.block_names(), field_name):
            for guesses, detail in chain_guesses(self.corpus, chain, self.persons, self.year, self.reference,
                                                     normaliser):
                out.append(Guesses("token_chain", field_name, guesses, detail))
        return out

    def _token_split(self, view: FilterView, field_name: str, pred: dict) -> list[Guesses]:
        """Split tokens give a class per phonetic code across all birth years: align the
        classes with the list's codes (by persons), then name each record with the commonest
        listed name of that code whose predicted popcount fits the filter's."""
        out = []
        names = list(self.reference.names(field_name))[:MAX_LIST]
        for key in split_keys(self.corpus, field_name):
            part, detail = split_classes(self.corpus, key, self.year)
            if not (part >= 0).any():
                continue
            self.structure.setdefault("token_split", {})[key] = detail
            derivation = next(k for k in self.corpus.schema.blocking if k.name == key).parts[0].partition(":")[2]
            codes = derive_array("person_name", derivation, pa.array(names, pa.string())).to_pylist()
            listed = pd.DataFrame({"name": names, "code": codes, "share": [self.reference.names(field_name)[n] for n in names],
                                   "pred": [pred.get(n, np.nan) for n in names]}).dropna(subset=["code"])
            code_share = listed.groupby("code")["share"].sum().sort_values(ascending=False)
            code_list = Reference({field_name: code_share.to_dict()}, "codes")
            national = np.full(self.corpus.rows, -1, np.int64)
            code_guess = align(part, national, self.persons, code_list, field_name, {}, options=self.options)
            has = pd.notna(code_guess) & (view.pop >= 0)
            observed = pd.DataFrame({"code": code_guess[has], "pop": view.pop[has]})
            pairs = observed.drop_duplicates().merge(listed, on="code")
            pairs = pairs[(pairs["pred"] - pairs["pop"]).abs() <= self.options.tolerance]
            best = pairs.sort_values("share", ascending=False).drop_duplicates(["code", "pop"])
            named = observed.merge(best[["code", "pop", "name"]], on=["code", "pop"], how="left")["name"].to_numpy()
            guesses = np.full(self.corpus.rows, None, dtype=object)
            guesses[has] = named
            guesses[pd.isna(guesses)] = None
            out.append(Guesses("token_split", field_name, guesses, {"key": key, **detail}))
        return out

    def _salt_groups(self, scope: str) -> tuple[np.ndarray, list[str]]:
        cache = self.structure.setdefault("_salt_cache", {})
        if scope not in cache:
            labels, keys = salt_groups(self.corpus, scope)
            cache[scope] = (labels, keys)
            known = (labels >= 0) & (self.year >= 0)
            modal = _modal_year(labels, self.year)
            mapped = np.array([modal.get(int(c), -1) for c in labels[known]])
            self.structure.setdefault("salt_groups", {})[scope] = {
                "keys": keys, "groups": int(len(np.unique(labels[labels >= 0]))),
                "records_without_salt": int((labels < 0).sum()),
                "purity_by_year": float((mapped == self.year[known]).mean()) if known.any() else None}
        return cache[scope]

    def _similarity(self, view: FilterView, field_name: str, pred: dict, copy: dict) -> list[Guesses]:
        if view.bits.shape[0] < 2:
            return []
        labels = clusters(view.bits, list(DICE_CUTS))
        out = []
        for cut, per_distinct in labels.items():
            cls = np.where(view.eq_class >= 0, per_distinct[np.maximum(view.eq_class, 0)], -1)
            class_pop = _class_values(cls, view.pop)
            out.append(Guesses("similarity", field_name, align(
                cls, self.year, self.persons, self.reference, field_name, self.year_groups, class_pop, pred,
                self.options), {**copy, "dice_cut": cut, "clusters": int(len(np.unique(per_distinct)))}))
        return out

    def _chaining(self, views: list[FilterView], field_name: str, predicted: dict) -> list[Guesses]:
        """Union-find over equal filters in every copy and file, joined by the attacker's
        linked persons and/or by exact-name blocking tokens (equal full-name tokens carry the
        same name into other scopes); classes grown that way are aligned. Variants: which
        joins are used, and naming only classes of at least ``CHAIN_MIN_PERSONS`` persons
        (big classes are the confident ones; the rest fall back to the list's guess)."""
        has = np.zeros(self.corpus.rows, bool)
        for v in views:
            has |= v.eq_class >= 0
        filters = [np.where(v.eq_class >= 0, v.eq_class + 1, 0) for v in views]
        person_key = np.where(has & (self.persons >= 0), self.persons + 1, 0)
        exact = [self.corpus.tokens(k) for k in exact_keys(self.corpus.schema, self.corpus.block_names(), field_name)]
        joins = {"persons": [person_key]}
        if exact:
            joins.update({"exact_tokens": exact, "persons+exact_tokens": [person_key, *exact]})
        first = views[0]
        out = []
        for join, extra in joins.items():
            grown = np.where(has, components(self.corpus.rows, filters + extra), -1)
            # Groups: the class's modal year when it stays within one, else the national list.
            per_class = _modal_year(grown, self.year)
            year_of_class = np.full(int(grown.max()) + 2, -1, np.int64)
            year_of_class[list(per_class)] = list(per_class.values())
            group = np.where(grown >= 0, year_of_class[grown], -1)
            class_pop = _class_values(grown, first.pop)
            sizes = np.bincount(grown[grown >= 0])
            for min_persons in CHAIN_MIN_PERSONS:
                options = replace(self.options, min_persons=max(min_persons, self.options.min_persons))
                guesses = align(grown, group, self.persons, self.reference, field_name, self.year_groups, class_pop,
                                predicted[first.group.name], options)
                out.append(Guesses("chaining", field_name, guesses, {
                    "classes": int(len(np.unique(grown[grown >= 0]))), "copies": len(views), "join": join,
                    "min_persons": min_persons, "largest_class_records": int(sizes.max()) if len(sizes) else 0}))
        return out

    def run(self) -> list[Guesses]:
        out: list[Guesses] = []
        for field_name in NAME_FIELDS:
            out.extend(self.attack_field(field_name))
        self.structure.pop("_salt_cache", None)
        return out


def _class_values(classes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per class label, the median of ``values`` over its records (label-indexed array)."""
    size = int(classes.max()) + 1 if (classes >= 0).any() else 0
    out = np.full(size, -1.0)
    if size:
        import pandas as pd

        keep = (classes >= 0) & (values >= 0)
        medians = pd.Series(values[keep]).groupby(classes[keep]).median()
        out[medians.index.to_numpy()] = medians.to_numpy()
    return out


def _modal_year(labels: np.ndarray, year: np.ndarray) -> dict[int, int]:
    """Per group label, its commonest known birth year (the list the attacker uses there)."""
    import pandas as pd

    keep = (labels >= 0) & (year >= 0)
    frame = pd.DataFrame({"g": labels[keep], "y": year[keep]})
    counts = frame.groupby(["g", "y"]).size().rename("n").reset_index().sort_values(["g", "n"], ascending=[True, False])
    modal = counts.drop_duplicates("g")
    return dict(zip(modal["g"].astype(int).tolist(), modal["y"].astype(int).tolist()))
