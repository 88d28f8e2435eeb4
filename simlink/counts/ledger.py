"""The release ledger: what has been published from a linkage database, kept inside it.

Protection inside one release is not enough: the same counts asked for again with another
threshold, window, period or agency subset can be differenced against the first. So every
protected release is recorded in the linkage database itself (which never leaves the linkage
unit): its parameters, the exact value of every cell and what was published. A new release
is checked against all of them (:func:`overlap_cells`), and differential-privacy releases
spend a total epsilon kept per database (:func:`budget_check`).

All ledger SQL is here. The ledger holds exact small counts, so it is as confidential as the
linkage database; nothing in it identifies a person (no person_key, no record_id).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import duckdb
import pandas as pd

from simlink.errors import SimlinkError

#: Total epsilon a linkage database may spend on DP releases unless changed (--dp-budget).
from simlink.defaults import DEFAULT_TOTAL_EPSILON  # noqa: E402  (light constant, shown in CLI help)
RELEASES = "simlink_releases"
CELLS = "simlink_release_cells"
BUDGET = "simlink_dp_budget"
_EPS_TOLERANCE = 1e-9

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {RELEASES} (
        release_id INTEGER PRIMARY KEY, created_utc VARCHAR, parameters VARCHAR,
        dp_epsilon DOUBLE, overlap_check BOOLEAN, cells_published INTEGER,
        cells_suppressed INTEGER, cells_suppressed_for_overlap INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {CELLS} (
        release_id INTEGER, table_name VARCHAR, row_label VARCHAR, column_name VARCHAR,
        exact BIGINT, published BIGINT)""",
    f"CREATE TABLE IF NOT EXISTS {BUDGET} (set_utc VARCHAR, total_epsilon DOUBLE)",
)


class LedgerError(SimlinkError):
    """A release the ledger does not allow (budget spent, or overlap with an earlier one)."""


@dataclass(frozen=True)
class EarlierRelease:
    """A recorded release: its id, when, with what parameters, and its published cells'
    exact values (cells it suppressed are not listed: they gave nothing to difference)."""

    release_id: int
    created_utc: str
    parameters: dict
    published_exact: Mapping[tuple, int]

    def describe(self) -> str:
        rule = self.parameters.get("repeat_rule", {})
        return (f"release {self.release_id} of {self.created_utc} (threshold "
                f"{rule.get('threshold')}, window {rule.get('window_days')} days)")


def overlap_cells(exact: Mapping[tuple, int], earlier: Iterable[EarlierRelease],
                  suppress_below: int) -> dict[tuple, int]:
    """Cells whose exact value differs from the same cell published in an earlier release by
    1 .. suppress_below - 1 people: publishing both would reveal a small group as a
    difference. Returns cell -> id of the first earlier release it clashes with."""
    out: dict[tuple, int] = {}
    for rel in earlier:
        for cell, old in rel.published_exact.items():
            new = exact.get(cell)
            if new is not None and cell not in out and 1 <= abs(new - old) < suppress_below:
                out[cell] = rel.release_id
    return out


@dataclass(frozen=True)
class Budget:
    total: float
    spent: float
    changed: bool = False  # this call set a new total

    @property
    def remaining(self) -> float:
        return max(0.0, self.total - self.spent)


def budget_check(budget: Budget, epsilon: float, path: Path) -> None:
    """Refuse a DP release that would spend more than the database's total epsilon."""
    if budget.spent + epsilon > budget.total + _EPS_TOLERANCE:
        raise LedgerError(f"differential-privacy budget exceeded: this release asks epsilon "
                          f"{epsilon:g} but {budget.spent:g} of the total {budget.total:g} is "
                          f"already spent ({budget.remaining:g} left); the total is changed "
                          "only explicitly, with --dp-budget", path=path)


class Ledger:
    """A read-write session on the ledger tables of one linkage database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.con = duckdb.connect(str(self.path))
            for ddl in _DDL:
                self.con.execute(ddl)
        except duckdb.Error:
            raise LedgerError("cannot write the release ledger in the linkage database "
                              "(read-only, or open in another process); protected releases "
                              "must be recorded", path=self.path) from None

    def __enter__(self) -> "Ledger":
        self.con.execute("BEGIN TRANSACTION")
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
        self.con.close()

    def budget(self, new_total: float | None = None) -> Budget:
        """The current total and spend; ``new_total`` (explicit --dp-budget) replaces the total."""
        if new_total is not None:
            self.con.execute(f"INSERT INTO {BUDGET} VALUES (?, ?)", [_now(), float(new_total)])
        row = self.con.execute(f"SELECT total_epsilon FROM {BUDGET} "
                               "ORDER BY rowid DESC LIMIT 1").fetchone()
        total = float(row[0]) if row else DEFAULT_TOTAL_EPSILON
        spent = self.con.execute(f"SELECT coalesce(sum(dp_epsilon), 0) FROM {RELEASES}").fetchone()[0]
        return Budget(total, float(spent), new_total is not None)

    def earlier(self) -> list[EarlierRelease]:
        """Every recorded release with its published cells' exact values."""
        heads = self.con.execute(f"SELECT release_id, created_utc, parameters FROM {RELEASES} "
                                 "ORDER BY release_id").fetchall()
        cells = self.con.execute(f"SELECT release_id, table_name, row_label, column_name, exact "
                                 f"FROM {CELLS} WHERE published IS NOT NULL").fetchall()
        by_id: dict[int, dict[tuple, int]] = {rid: {} for rid, _, _ in heads}
        for rid, table, row, col, exact in cells:
            by_id.setdefault(rid, {})[(table, row, col)] = int(exact)
        return [EarlierRelease(rid, created, json.loads(params), by_id[rid])
                for rid, created, params in heads]

    def record(self, parameters: dict, dp_epsilon: float | None, overlap_check: bool,
               exact: Mapping[tuple, int], published: Mapping[tuple, int | None],
               n_overlap: int) -> tuple[int, str]:
        """Append a release and its cells; returns its id and time."""
        rid = self.con.execute(f"SELECT coalesce(max(release_id), 0) + 1 FROM {RELEASES}").fetchone()[0]
        created = _now()
        n_pub = sum(v is not None for v in published.values())
        self.con.execute(f"INSERT INTO {RELEASES} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [rid, created, json.dumps(parameters, sort_keys=True), dp_epsilon,
                          overlap_check, n_pub, len(published) - n_pub, n_overlap])
        frame = pd.DataFrame(
            [(rid, t, r, c, int(exact[(t, r, c)]), published.get((t, r, c)))
             for (t, r, c) in exact],
            columns=["release_id", "table_name", "row_label", "column_name", "exact", "published"])
        frame["published"] = frame["published"].astype("Int64")
        self.con.register("_cells", frame)
        self.con.execute(f"INSERT INTO {CELLS} SELECT * FROM _cells")
        self.con.unregister("_cells")
        return int(rid), created


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
