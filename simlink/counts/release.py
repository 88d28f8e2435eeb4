"""A release: the measures after disclosure control, with the statement of rules applied.

This module knows the *structure* of the measure tables — which cell is the total of which
others — and hands every count cell to :func:`simlink.counts.disclosure.protect`. Nothing
identifying (person_key, record_id) exists in the measures, so none can reach a release.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from simlink.counts.disclosure import (
    SUPPRESSED_MARK, Additive, DisclosurePolicy, Protected, protect,
)
from simlink.counts.measures import MEASURE_NAMES, RepeatRule, measures_from_db

#: The row label column of each table.
DIMENSION = {"totals": "measure", "by_service": "service", "services_used": "n_services",
             "combinations": "combination", "contact_bands": "band", "monthly": "month"}
#: Columns that are not counts (descriptive, or derived after protection).
NON_COUNT = {"n_services"}
SHARE_COLUMN = "repeat_contact_share"


@dataclass
class Release:
    """Protected tables (suppressed = <NA>) plus the rules that made them publishable."""

    tables: dict[str, pd.DataFrame]
    policy: DisclosurePolicy
    rule: RepeatRule
    statement: list[str]
    suppressed_primary: int = 0
    suppressed_secondary: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def protected(self) -> bool:
        return self.policy.enabled

    def header(self) -> list[str]:
        status = "PROTECTED" if self.protected else "UNPROTECTED - DO NOT PUBLISH"
        return [f"simlink linked counts: {status}", self.rule.describe(), *self.statement]

    def to_long(self) -> pd.DataFrame:
        """One row per published cell: table, dimension, category, measure, value."""
        rows = []
        for name, df in self.tables.items():
            dim = DIMENSION[name]
            for rec in df.to_dict("records"):
                for col, val in rec.items():
                    if col == dim:
                        continue
                    rows.append({"table": name, "dimension": dim, "category": str(rec[dim]),
                                 "measure": col, "value": None if pd.isna(val) else val})
        return pd.DataFrame(rows, columns=["table", "dimension", "category", "measure", "value"])

    def to_csv(self) -> str:
        """Long CSV; the statement comes first as '#' comment lines (read_csv(comment='#'))."""
        long = self.to_long()
        long["value"] = [SUPPRESSED_MARK if v is None else _fmt(v) for v in long["value"]]
        buf = io.StringIO()
        for line in self.header():
            buf.write(f"# {line}\n")
        long.to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue()

    def to_dict(self) -> dict:
        tables = {}
        for name, df in self.tables.items():
            tables[name] = [{k: (None if pd.isna(v) else _plain(v)) for k, v in rec.items()}
                            for rec in df.to_dict("records")]
        return {
            "protected": self.protected,
            "status": "PROTECTED" if self.protected else "UNPROTECTED - DO NOT PUBLISH",
            "repeat_rule": {"threshold": self.rule.threshold,
                            "window_days": self.rule.window_days},
            "disclosure_control": {
                "suppress_below": self.policy.suppress_below if self.protected else None,
                "round_to": self.policy.round_to if self.protected else None,
                "secondary_suppression": self.policy.secondary and self.protected,
                "dp_epsilon": self.policy.dp_epsilon if self.protected else None,
                "dp_seeded": self.policy.dp_seed is not None,
                "cells_suppressed_primary": self.suppressed_primary,
                "cells_suppressed_secondary": self.suppressed_secondary,
                **self.meta,
            },
            "statement": self.statement,
            "suppressed_cells_are": "null",
            "tables": tables,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Human-readable tables for a terminal."""
        out = [*(f"# {h}" for h in self.header()), ""]
        for name, df in self.tables.items():
            shown = df.copy()
            for col in shown.columns:
                shown[col] = [SUPPRESSED_MARK if pd.isna(v) else _fmt(v) for v in shown[col]]
            out += [f"== {name} ==", shown.to_string(index=False), ""]
        return "\n".join(out)

    def render(self, fmt: str) -> str:
        return {"table": self.to_text, "csv": self.to_csv, "json": self.to_json}[fmt]()


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(_plain(v))


def cells_of(tables: dict[str, pd.DataFrame]) -> dict[tuple, int]:
    """Every count cell as ``(table, row label, column) -> int``."""
    cells = {}
    for name in MEASURE_NAMES:
        df, dim = tables[name], DIMENSION[name]
        for rec in df.to_dict("records"):
            for col, val in rec.items():
                if col != dim and col not in NON_COUNT and col != SHARE_COLUMN:
                    cells[(name, str(rec[dim]), col)] = int(val)
    return cells


def relations(tables: dict[str, pd.DataFrame]) -> tuple[list[Additive], list[tuple]]:
    """The additive relations (total = sum of parts) and upper bounds among the cells."""
    def col(name: str, column: str, rows=None) -> tuple:
        labels = [str(x) for x in tables[name][DIMENSION[name]]]
        return tuple((name, r, column) for r in labels if rows is None or r in rows)

    tot = lambda m: ("totals", m, "count")  # noqa: E731
    rel = []
    for parts in (col("by_service", "contacts"), col("contact_bands", "contacts"),
                  col("monthly", "contacts")):
        rel.append(Additive(tot("contacts"), parts))
    for parts in (col("services_used", "people"), col("combinations", "people"),
                  col("contact_bands", "people")):
        rel.append(Additive(tot("people"), parts))
    for parts in (col("services_used", "repeat_people"), col("combinations", "repeat_people")):
        rel.append(Additive(tot("repeat_people"), parts))
    rel.append(Additive(tot("repeat_contacts"), col("by_service", "repeat_contacts")))
    combos = tables["combinations"]
    for measure in ("people", "repeat_people"):
        for k in tables["services_used"]["n_services"]:
            rows = set(combos.loc[combos["n_services"] == k, "combination"])
            rel.append(Additive(("services_used", str(k), measure),
                                col("combinations", measure, rows)))
        for service in tables["by_service"]["service"]:
            rows = {c for c in combos["combination"] if service in c.split("+")}
            rel.append(Additive(("by_service", service, measure),
                                col("combinations", measure, rows)))
    dom = [(tot("people"), tot("repeat_people")), (tot("contacts"), tot("repeat_contacts"))]
    for name in ("by_service", "services_used", "combinations", "monthly"):
        for (_, r, _), child in zip(col(name, "people"), col(name, "repeat_people")):
            dom.append(((name, r, "people"), child))
    for (_, r, _), child in zip(col("by_service", "contacts"), col("by_service", "repeat_contacts")):
        dom.append((("by_service", r, "contacts"), child))
    # A band's contacts pin its people (band "1": equal; "2": double) and vice versa.
    for p, c in zip(col("contact_bands", "people"), col("contact_bands", "contacts")):
        dom += [(p, c), (c, p)]
    return rel, dom


def protect_measures(raw: dict[str, pd.DataFrame], policy: DisclosurePolicy,
                     rule: RepeatRule) -> Release:
    """Turn raw measures into a release under ``policy``; shares from protected counts."""
    additive, dominance = relations(raw)
    result: Protected = protect(cells_of(raw), policy, additive=additive, dominance=dominance)
    tables = {}
    for name in MEASURE_NAMES:
        df, dim = raw[name].copy(), DIMENSION[name]
        labels = df[dim].astype(str).tolist()
        for col in df.columns:
            if col == dim or col in NON_COUNT:
                continue
            df[col] = pd.array([result.values[(name, r, col)] for r in labels], dtype="Int64")
        tables[name] = df
    bs = tables["by_service"]
    share = (bs["repeat_contacts"].astype("Float64") / bs["contacts"].astype("Float64")) * 100
    bs[SHARE_COLUMN] = share.mask(bs["contacts"].fillna(0) == 0).round(1)
    meta = {}
    if result.noise_scale is not None:
        meta = {"dp_cells": len(result.values), "dp_noise_scale": round(result.noise_scale, 3)}
    statement = policy.describe()
    if policy.enabled:
        statement = statement + [f"{SHARE_COLUMN} is the percentage of the service's contacts "
                                 "made by repeat-contact people (protected counts)"]
    return Release(tables, policy, rule, statement, len(result.primary), len(result.secondary),
                   meta)


def release(linkage_db_path: str | Path, *, policy: DisclosurePolicy | None = None,
            repeat_threshold: int = 5, window_days: int = 365) -> Release:
    """The one-line API: linkage database in, protected release out."""
    rule = RepeatRule(repeat_threshold, window_days)
    raw = measures_from_db(linkage_db_path, repeat_threshold=repeat_threshold,
                           window_days=window_days)
    return protect_measures(raw, policy or DisclosurePolicy(), rule)
