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
from typing import Sequence

import pandas as pd

from simlink.counts.disclosure import (
    NOT_APPLICABLE, SUPPRESSED_MARK, Additive, DisclosurePolicy, Protected,
    laplace_error, protect,
)
from simlink.counts.ledger import (
    Budget, EarlierRelease, Ledger, LedgerError, budget_check, overlap_cells,
)
from simlink.counts.measures import (
    MEASURE_NAMES, RepeatRule, Scope, measures_from_db, run_metadata,
)

#: The row label column of each table.
DIMENSION = {"totals": "measure", "by_service": "service", "services_used": "n_services",
             "combinations": "combination", "contact_bands": "band", "monthly": "month",
             "monthly_by_service": "month"}
#: Columns that are not counts (descriptive, or derived after protection).
NON_COUNT = {"n_services"}
SHARE_COLUMN = "repeat_contact_share"
#: Version of the release's JSON/CSV content. 2: table monthly_by_service, "n/a" for a share of
#: no contacts (text/CSV), release_id / scope / dp_budget_* / rounding in disclosure_control.
RELEASE_FORMAT = 2


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
    #: Linkage-unit only, never rendered: exact and published value of every count cell (for
    #: the ledger), and what ``simlink link`` recorded about the run (for the report).
    exact_cells: dict = field(default_factory=dict, repr=False)
    published_cells: dict = field(default_factory=dict, repr=False)
    linkage: dict = field(default_factory=dict, repr=False)

    @property
    def protected(self) -> bool:
        return self.policy.enabled

    def header(self) -> list[str]:
        status = "PROTECTED" if self.protected else "UNPROTECTED - DO NOT PUBLISH"
        return [f"simlink linked counts: {status}", self.rule.describe(), *self.statement]

    def cell_text(self, table: str, rec: dict, col: str) -> str:
        """How one cell is printed: [c] when suppressed, n/a for a share of no contacts."""
        val = rec[col]
        if pd.isna(val):
            if (table == "by_service" and col == SHARE_COLUMN and not pd.isna(rec["contacts"])
                    and rec["contacts"] == 0):
                return NOT_APPLICABLE
            return SUPPRESSED_MARK
        return _fmt(val)

    def to_long(self, text: bool = False) -> pd.DataFrame:
        """One row per published cell: table, dimension, category, measure, value (and, with
        ``text``, the cell as printed)."""
        rows = []
        for name, df in self.tables.items():
            dim = DIMENSION[name]
            for rec in df.to_dict("records"):
                for col, val in rec.items():
                    if col == dim:
                        continue
                    rows.append({"table": name, "dimension": dim, "category": str(rec[dim]),
                                 "measure": col, "value": None if pd.isna(val) else val,
                                 "text": self.cell_text(name, rec, col)})
        return pd.DataFrame(rows, columns=["table", "dimension", "category", "measure", "value",
                                           "text"]).drop(columns=[] if text else ["text"])

    def to_csv(self) -> str:
        """Long CSV; the statement comes first as '#' comment lines (read_csv(comment='#'))."""
        long = self.to_long(text=True)
        long["value"] = long.pop("text")
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
            "release_format": RELEASE_FORMAT,
            "protected": self.protected,
            "status": "PROTECTED" if self.protected else "UNPROTECTED - DO NOT PUBLISH",
            "repeat_rule": {"threshold": self.rule.threshold,
                            "window_days": self.rule.window_days},
            "disclosure_control": {
                "suppress_below": self.policy.suppress_below if self.protected else None,
                "round_to": self.policy.round_to if self.protected else None,
                "secondary_suppression": self.policy.secondary and self.protected,
                "dp_epsilon": self.policy.dp_epsilon if self.protected else None,
                "rounding": self.policy.rounding if self.protected else None,
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
            recs = df.to_dict("records")
            for col in shown.columns:
                shown[col] = [self.cell_text(name, rec, col) for rec in recs]
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


def relations(tables: dict[str, pd.DataFrame]) -> tuple[list[Additive], list[tuple], list[tuple]]:
    """The relations an analyst can write down between the cells: additive (total = sum of
    parts), upper bounds (parent >= child) and zero links (one is 0 exactly when the other is)."""
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
    # Contacts per month and service add up across services (the month) and months (the service).
    mbs = tables["monthly_by_service"]
    services = [c for c in mbs.columns if c != "month"]
    for month in mbs["month"].astype(str):
        rel.append(Additive(("monthly", month, "contacts"),
                            tuple(("monthly_by_service", month, s) for s in services)))
    for service in services:
        rel.append(Additive(("by_service", service, "contacts"), col("monthly_by_service", service)))
    dom = [(tot("people"), tot("repeat_people")), (tot("contacts"), tot("repeat_contacts"))]
    for name in ("by_service", "services_used", "combinations", "monthly"):
        for (_, r, _), child in zip(col(name, "people"), col(name, "repeat_people")):
            dom.append(((name, r, "people"), child))
    for (_, r, _), child in zip(col("by_service", "contacts"), col("by_service", "repeat_contacts")):
        dom.append((("by_service", r, "contacts"), child))
    # A band's contacts pin its people (band "1": equal; "2": double) and vice versa.
    for p, c in zip(col("contact_bands", "people"), col("contact_bands", "contacts")):
        dom += [(p, c), (c, p)]
    # No contacts <=> nobody; no repeat contacts <=> no repeat-contact person.
    zero = [(tot("contacts"), tot("people")), (tot("repeat_contacts"), tot("repeat_people"))]
    for name, pairs in (("by_service", (("contacts", "people"), ("repeat_contacts", "repeat_people"))),
                        ("monthly", (("contacts", "people"),))):
        for a, b in pairs:
            zero += list(zip(col(name, a), col(name, b)))
    return rel, dom, zero


def protect_cells(exact: dict[tuple, int], rels: tuple, policy: DisclosurePolicy, *,
                  earlier: Sequence[EarlierRelease] = (), check_overlap: bool = True,
                  on_overlap: str = "suppress", path: Path | None = None
                  ) -> tuple[Protected, dict[tuple, int]]:
    """The disclosure decisions of a release, on its cells and ``relations()``: the fast path
    (no tables). Returns the protected values and the cells withheld for overlap."""
    if on_overlap not in ("suppress", "refuse"):
        raise LedgerError("on_overlap must be 'suppress' or 'refuse'")
    checking = check_overlap and policy.enabled and policy.dp_epsilon is None
    clashes = overlap_cells(exact, earlier, policy.suppress_below) if checking else {}
    if clashes and on_overlap == "refuse":
        first = min(clashes.values())
        which = next(e for e in earlier if e.release_id == first)
        raise LedgerError(f"refused: {len(clashes)} cell(s) would differ by 1 to "
                          f"{policy.suppress_below - 1} people from {which.describe()}, so the "
                          "difference would reveal a small group", path=path)
    additive, dominance, zero_links = rels
    result = protect(exact, policy, additive=additive, dominance=dominance,
                     zero_links=zero_links, forced=clashes)
    return result, clashes


def protect_measures(raw: dict[str, pd.DataFrame], policy: DisclosurePolicy,
                     rule: RepeatRule, *, earlier: Sequence[EarlierRelease] = (),
                     check_overlap: bool = True, on_overlap: str = "suppress",
                     path: Path | None = None) -> Release:
    """Turn raw measures into a release under ``policy``; shares from protected counts.

    ``earlier``: releases already published from the same database. With ``check_overlap``
    (protected, non-DP releases), a cell whose exact value differs from the same published
    earlier cell by 1 .. suppress_below - 1 is suppressed, or (``on_overlap="refuse"``) the
    release is refused naming the earlier release.
    """
    exact = cells_of(raw)
    checking = check_overlap and policy.enabled and policy.dp_epsilon is None
    result, clashes = protect_cells(exact, relations(raw), policy, earlier=earlier,
                                    check_overlap=check_overlap, on_overlap=on_overlap,
                                    path=path)
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
    meta: dict = {"cells": len(exact)}
    statement = policy.describe()
    if result.noise_scale is not None:
        err = laplace_error(result.noise_scale)
        meta |= {"dp_cells": len(result.values), "dp_noise_scale": round(result.noise_scale, 3),
                 "dp_expected_abs_error_per_cell": round(err["mean_abs"], 2),
                 "dp_error_sd_per_cell": round(err["sd"], 2),
                 "dp_error_95_per_cell": err["within_95"]}
        statement = statement + [
            f"expected error per cell from the noise: {err['mean_abs']:,.1f} on average "
            f"(standard deviation {err['sd']:,.1f}); 95% of cells within ±{err['within_95']:,} "
            "of the true count before suppression and rounding"]
    if policy.enabled and policy.dp_epsilon is None:
        if checking:
            ids = sorted(set(clashes.values()))
            statement = statement + [
                f"cross-release check: compared with {len(earlier)} earlier release(s) of this "
                f"linkage database; {len(clashes)} cell(s) suppressed because their exact value "
                f"differs by 1 to {policy.suppress_below - 1} from the same published cell"
                + (f" (releases {', '.join(map(str, ids))})" if ids else "")]
        else:
            statement = statement + [
                "cross-release check OFF (--no-release-check): cells of this release were NOT "
                "compared with earlier releases and may be differenced against them"]
    if policy.enabled and policy.dp_epsilon is not None:
        statement = statement + [
            "cross-release check: not applied to a differential-privacy release (its decisions "
            "would depend on exact values); its protection across releases is the epsilon "
            "budget of the linkage database"]
    meta["cells_suppressed_for_overlap"] = len(result.forced)
    if policy.enabled:
        statement = statement + [f"{SHARE_COLUMN} is the percentage of the service's contacts "
                                 "made by repeat-contact people (protected counts)"]
    return Release(tables, policy, rule, statement, len(result.primary), len(result.secondary),
                   meta, exact_cells=exact, published_cells=result.values)


def release(linkage_db_path: str | Path, *, policy: DisclosurePolicy | None = None,
            repeat_threshold: int = 5, window_days: int = 365, scope: Scope = Scope(),
            check_overlap: bool = True, on_overlap: str = "suppress",
            dp_budget: float | None = None) -> Release:
    """The one-line API: linkage database in, protected release out — recorded in the
    database's release ledger (protected releases only), checked against earlier releases,
    and charged to its DP budget."""
    path = Path(linkage_db_path)
    policy = policy or DisclosurePolicy()
    rule = RepeatRule(repeat_threshold, window_days)
    raw = measures_from_db(path, repeat_threshold=repeat_threshold, window_days=window_days,
                           scope=scope)
    linkage = run_metadata(path)
    if not policy.enabled:
        rel = protect_measures(raw, policy, rule)
        rel.meta |= {"scope": scope.as_dict()}
        rel.linkage = linkage
        return rel
    with Ledger(path) as ledger:
        budget: Budget = ledger.budget(dp_budget)
        if policy.dp_epsilon is not None:
            budget_check(budget, policy.dp_epsilon, path)
        earlier = ledger.earlier()
        rel = protect_measures(raw, policy, rule, earlier=earlier, check_overlap=check_overlap,
                               on_overlap=on_overlap, path=path)
        params = {"repeat_rule": {"threshold": rule.threshold, "window_days": rule.window_days},
                  "scope": scope.as_dict(), "suppress_below": policy.suppress_below,
                  "round_to": policy.round_to, "rounding": policy.rounding,
                  "dp_epsilon": policy.dp_epsilon, "dp_seeded": policy.dp_seed is not None}
        rid, created = ledger.record(params, policy.dp_epsilon,
                                     check_overlap and policy.dp_epsilon is None,
                                     rel.exact_cells, rel.published_cells,
                                     rel.meta["cells_suppressed_for_overlap"])
    spent = budget.spent + (policy.dp_epsilon or 0.0)
    rel.meta |= {"release_id": rid, "recorded_utc": created, "scope": scope.as_dict(),
                 "dp_budget_total": budget.total, "dp_budget_spent": round(spent, 6),
                 "dp_budget_remaining": round(max(0.0, budget.total - spent), 6)}
    rel.statement.append(
        f"recorded as release {rid} in the linkage database's release ledger; "
        f"differential-privacy budget of this database: total epsilon {budget.total:g}"
        + (" (set by this command)" if budget.changed else "")
        + f", spent {spent:g}, remaining {max(0.0, budget.total - spent):g}")
    rel.linkage = linkage
    return rel
