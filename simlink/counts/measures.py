"""Raw (UNPROTECTED) linked-count measures, computed in DuckDB.

All the SQL for the measures is generated here, in one place, and runs on a view named
``src`` with columns ``person_key, service, contact_date`` (one row per contact). Two entry
points feed that view:

* :func:`measures_from_db` — the linkage database written by ``simlink link`` (attached
  read-only; ``events`` joined to ``event_person`` on ``(agency, record_id)``);
* :func:`compute_measures` — a pandas DataFrame (synthetic truth, evaluation).

The results are exact counts about *people* and *contacts*: they must go through
:mod:`simlink.counts.disclosure` before anyone outside the linkage unit sees them.
The names of the returned tables and their columns are a contract (docs/counts.md).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from itertools import combinations as _subsets
from pathlib import Path

import duckdb
import pandas as pd

from simlink.errors import InputError, SimlinkError

#: Services every release lists, even when a service has no contact (a stable table shape).
KNOWN_SERVICES: tuple[str, ...] = ("ambulance", "ed", "mental_health", "police")
#: Contacts-per-person bands: (label, lowest, highest or None for open-ended).
CONTACT_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-9", 5, 9), ("10-19", 10, 19), ("20+", 20, None),
)
#: Month label for contacts without a usable date.
UNKNOWN_MONTH = "unknown"
#: Names of the measure tables, in release order (a contract).
MEASURE_NAMES: tuple[str, ...] = (
    "totals", "by_service", "services_used", "combinations", "contact_bands", "monthly",
    "monthly_by_service",
)
TOTAL_MEASURES: tuple[str, ...] = ("contacts", "people", "repeat_people", "repeat_contacts")
_REQUIRED = {
    "events": ("agency", "record_id", "service", "contact_date"),
    "event_person": ("agency", "record_id", "person_key"),
}


@dataclass(frozen=True)
class RepeatRule:
    """A repeat-contact person has >= ``threshold`` contacts within some ``window_days`` days."""

    threshold: int = 5
    window_days: int = 365

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise SimlinkError("the repeat threshold must be at least 1")
        if self.window_days < 1:
            raise SimlinkError("the repeat window must be at least 1 day")

    def describe(self) -> str:
        return (f"repeat-contact person: at least {self.threshold} contacts within "
                f"{self.window_days} consecutive days")


@dataclass(frozen=True)
class Scope:
    """Which contacts a release covers: some agencies only, and/or a period of contact dates
    (inclusive). Undated contacts are left out once a period is given."""

    agencies: tuple[str, ...] | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None

    def __post_init__(self) -> None:
        if self.agencies is not None and not self.agencies:
            raise SimlinkError("an agency subset must name at least one agency")
        if self.start and self.end and self.start > self.end:
            raise SimlinkError("the period starts after it ends")

    def where(self) -> str:
        """SQL condition on ``src`` (agency, contact_date)."""
        conds = []
        if self.agencies is not None:
            conds.append(f"agency IN ({', '.join(_quote(a) for a in sorted(self.agencies))})")
        if self.start is not None:
            conds.append(f"contact_date >= DATE {_quote(self.start.isoformat())}")
        if self.end is not None:
            conds.append(f"contact_date <= DATE {_quote(self.end.isoformat())}")
        return " AND ".join(conds) or "TRUE"

    def as_dict(self) -> dict:
        return {"agencies": sorted(self.agencies) if self.agencies is not None else None,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _contact_sql(rule: RepeatRule, scope: Scope) -> str:
    """Per-contact count of the person's contacts in the window ending on its date."""
    return f"""CREATE OR REPLACE TEMP TABLE _contact AS
        SELECT person_key, coalesce(service, 'unknown') AS service, contact_date,
               CASE WHEN contact_date IS NULL THEN 0 ELSE count(*) OVER (
                   PARTITION BY person_key, contact_date IS NULL ORDER BY contact_date
                   RANGE BETWEEN INTERVAL {rule.window_days - 1} DAYS PRECEDING AND CURRENT ROW)
               END AS window_contacts
        FROM src WHERE {scope.where()}"""


def _person_sql(services: list[str], rule: RepeatRule) -> list[str]:
    """One row per person (services as a bit mask: cheaper than aggregating strings), then
    contacts carrying their person's repeat flag. Temp tables, never published."""
    bits = " ".join(f"WHEN {_quote(s)} THEN {1 << i}" for i, s in enumerate(services))
    return [
        f"""CREATE OR REPLACE TEMP TABLE _person AS
        SELECT person_key, count(*) AS n_contacts,
               bool_or(window_contacts >= {rule.threshold}) AS is_repeat,
               bit_or(CASE service {bits} END)::BIGINT AS service_mask
        FROM _contact GROUP BY person_key""",
        """CREATE OR REPLACE TEMP TABLE _contact_p AS
        SELECT c.service, c.contact_date, c.window_contacts, c.person_key, p.is_repeat
        FROM _contact c JOIN _person p USING (person_key)""",
    ]


def _combinations(services: list[str]) -> list[tuple[str, int, int]]:
    """Every non-empty service combination: (label, number of services, bit mask)."""
    index = {s: i for i, s in enumerate(services)}
    return [("+".join(c), len(c), sum(1 << index[s] for s in c))
            for k in range(1, len(services) + 1) for c in _subsets(services, k)]


# Every month from the first to the last contact (so empty months show as zeros), then the
# unknown month when some contact has no date: the rows of both monthly tables.
_MONTH_GRID = f"""bounds AS (SELECT date_trunc('month', min(contact_date)) AS lo,
                               date_trunc('month', max(contact_date)) AS hi
                        FROM _contact_p),
            m AS (SELECT strftime(g.range, '%Y-%m') AS month, 0 AS o
                  FROM bounds, range(bounds.lo, bounds.hi + INTERVAL 1 MONTH, INTERVAL 1 MONTH) g
                  WHERE bounds.lo IS NOT NULL
                  UNION ALL SELECT '{UNKNOWN_MONTH}', 1
                  WHERE EXISTS (SELECT 1 FROM _contact_p WHERE contact_date IS NULL))"""


def _measure_sql(services: list[str], rule: RepeatRule) -> dict[str, str]:
    """One SELECT per published table; each reads only the temp tables above."""
    svc_values = ", ".join(f"({_quote(s)}, {i})" for i, s in enumerate(services))
    combo_values = ", ".join(f"({_quote(label)}, {k}, {mask})"
                             for label, k, mask in _combinations(services))
    by_month_service = ", ".join(
        f"coalesce(sum(n) FILTER (service = {_quote(svc)}), 0)::BIGINT AS {_ident(svc)}"
        for svc in services)
    band_values = ", ".join(
        f"({_quote(lab)}, {i}, {lo}, {hi if hi is not None else 'NULL'})"
        for i, (lab, lo, hi) in enumerate(CONTACT_BANDS))
    return {
        "totals": """
            SELECT measure, count FROM (
              SELECT 0 AS o, 'contacts' AS measure, (SELECT count(*) FROM _contact_p) AS count
              UNION ALL SELECT 1, 'people', (SELECT count(*) FROM _person)
              UNION ALL SELECT 2, 'repeat_people', (SELECT count(*) FILTER (is_repeat) FROM _person)
              UNION ALL SELECT 3, 'repeat_contacts',
                        (SELECT count(*) FILTER (is_repeat) FROM _contact_p)) ORDER BY o""",
        "by_service": f"""
            WITH s(service, o) AS (VALUES {svc_values}),
            pp AS (SELECT service, person_key, any_value(is_repeat) AS is_repeat,
                          count(*) AS n FROM _contact_p GROUP BY service, person_key),
            agg AS (SELECT service, sum(n) AS contacts, count(*) AS people,
                           count(*) FILTER (is_repeat) AS repeat_people,
                           coalesce(sum(n) FILTER (is_repeat), 0) AS repeat_contacts
                    FROM pp GROUP BY service)
            SELECT s.service, coalesce(contacts, 0) AS contacts, coalesce(people, 0) AS people,
                   coalesce(repeat_people, 0) AS repeat_people,
                   coalesce(repeat_contacts, 0) AS repeat_contacts
            FROM s LEFT JOIN agg USING (service) ORDER BY s.o""",
        "services_used": f"""
            WITH k AS (SELECT range AS n_services FROM range(1, {len(services) + 1})),
            agg AS (SELECT bit_count(service_mask) AS n_services, count(*) AS people,
                           count(*) FILTER (is_repeat) AS repeat_people
                    FROM _person GROUP BY 1)
            SELECT k.n_services, coalesce(people, 0) AS people,
                   coalesce(repeat_people, 0) AS repeat_people
            FROM k LEFT JOIN agg USING (n_services) ORDER BY k.n_services""",
        "combinations": f"""
            WITH c(combination, n_services, service_mask) AS (VALUES {combo_values}),
            agg AS (SELECT service_mask, count(*) AS people,
                           count(*) FILTER (is_repeat) AS repeat_people
                    FROM _person GROUP BY service_mask)
            SELECT c.combination, c.n_services, coalesce(people, 0) AS people,
                   coalesce(repeat_people, 0) AS repeat_people
            FROM c LEFT JOIN agg USING (service_mask)
            ORDER BY c.n_services, c.combination""",
        "contact_bands": f"""
            WITH b(band, o, lo, hi) AS (VALUES {band_values}),
            agg AS (SELECT b.band, count(*) AS people, sum(p.n_contacts) AS contacts
                    FROM _person p JOIN b
                      ON p.n_contacts >= b.lo AND (b.hi IS NULL OR p.n_contacts <= b.hi)
                    GROUP BY b.band)
            SELECT b.band, coalesce(people, 0) AS people, coalesce(contacts, 0)::BIGINT AS contacts
            FROM b LEFT JOIN agg USING (band) ORDER BY b.o""",
        # A repeat-contact person in month m: someone with at least one contact dated in m that
        # is the threshold-th (or later) contact of the window ending on that contact's date.
        "monthly": f"""
            WITH {_MONTH_GRID},
            pm AS (SELECT date_trunc('month', contact_date) AS m_date, person_key, count(*) AS n,
                          bool_or(window_contacts >= {rule.threshold}) AS is_repeat
                   FROM _contact_p GROUP BY 1, 2),
            agg AS (SELECT coalesce(strftime(m_date, '%Y-%m'), '{UNKNOWN_MONTH}') AS month,
                           sum(n) AS contacts, count(*) AS people,
                           count(*) FILTER (is_repeat) AS repeat_people
                    FROM pm GROUP BY m_date)
            SELECT m.month, coalesce(contacts, 0) AS contacts, coalesce(people, 0) AS people,
                   coalesce(repeat_people, 0) AS repeat_people
            FROM m LEFT JOIN agg USING (month) ORDER BY m.o, m.month""",
        # Contacts per month and service: the per-service trend. Same month rows as monthly.
        "monthly_by_service": f"""
            WITH {_MONTH_GRID},
            ms AS (SELECT coalesce(strftime(date_trunc('month', contact_date), '%Y-%m'),
                                   '{UNKNOWN_MONTH}') AS month, service, count(*) AS n
                   FROM _contact_p GROUP BY 1, 2),
            agg AS (SELECT month, {by_month_service} FROM ms GROUP BY month)
            SELECT m.month, {", ".join(f"coalesce(agg.{_ident(svc)}, 0) AS {_ident(svc)}"
                                       for svc in services)}
            FROM m LEFT JOIN agg USING (month) ORDER BY m.o, m.month""",
    }


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_agencies(con: duckdb.DuckDBPyConnection, scope: Scope, path=None) -> None:
    """An agency subset must name agencies that are in the data (names are not identifiers)."""
    if scope.agencies is None:
        return
    have = {r[0] for r in con.execute("SELECT DISTINCT agency FROM src").fetchall()}
    unknown = sorted(set(scope.agencies) - have)
    if unknown:
        raise InputError(f"no agency named {', '.join(repr(a) for a in unknown)} in the data "
                         f"(agencies: {', '.join(sorted(map(str, have)))})", path=path)


def _run(con: duckdb.DuckDBPyConnection, rule: RepeatRule,
         scope: Scope = Scope()) -> dict[str, pd.DataFrame]:
    """Stage the temp tables on ``src`` and run every measure; drop the staging after."""
    con.execute(_contact_sql(rule, scope))
    present = [r[0] for r in con.execute("SELECT DISTINCT service FROM _contact").fetchall()]
    services = sorted(set(KNOWN_SERVICES) | set(present))
    if len(services) > 8:
        raise InputError(f"too many distinct services ({len(services)}) for combination "
                         "counts; expected the agencies' few service names")
    for sql in _person_sql(services, rule):
        con.execute(sql)
    try:
        out = {name: con.execute(sql).df() for name, sql in _measure_sql(services, rule).items()}
    finally:
        for table in ("_contact_p", "_person", "_contact"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    for df in out.values():  # plain int64 counts, whatever DuckDB chose
        for col in df.columns:
            if col not in ("measure", "service", "combination", "band", "month"):
                df[col] = df[col].astype("int64")
    return out


def compute_measures(events: pd.DataFrame, *, repeat_threshold: int = 5,
                     window_days: int = 365, scope: Scope = Scope()) -> dict[str, pd.DataFrame]:
    """Raw measures from a DataFrame of contacts (agency, record_id, service, contact_date,
    person_key) — the same SQL as the database path. UNPROTECTED: for truth and evaluation."""
    missing = [c for c in ("service", "contact_date", "person_key") if c not in events.columns]
    if missing:
        raise InputError(f"events table lacks column(s) {', '.join(missing)}")
    rule = RepeatRule(repeat_threshold, window_days)
    con = duckdb.connect()
    try:
        frame = events[["person_key", "service", "contact_date"]].copy()
        frame["agency"] = (events["agency"].astype(str) if "agency" in events.columns
                           else frame["service"].astype(str))
        con.register("_input", frame)
        # person_key keeps its type: a synthetic truth may use string ids.
        con.execute("CREATE TEMP VIEW src AS SELECT person_key, agency::VARCHAR AS agency, "
                    "service::VARCHAR AS service, contact_date::DATE AS contact_date FROM _input")
        _check_agencies(con, scope)
        return _run(con, rule, scope)
    finally:
        con.close()


def open_linkage(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Attach a linkage database read-only and define ``src``; errors name the file only."""
    path = Path(path)
    if not path.is_file():
        raise InputError("linkage database not found", path=path)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_quote(str(path))} AS linkage (READ_ONLY)")
    except duckdb.Error:
        con.close()
        raise InputError("cannot be opened as a DuckDB database (not a linkage database, or "
                         "still open for writing by another process)", path=path) from None
    cols = con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = 'linkage'").fetchall()
    have: dict[str, set[str]] = {}
    for table, column in cols:
        have.setdefault(table, set()).add(column)
    for table, needed in _REQUIRED.items():
        if table not in have:
            con.close()
            raise InputError(f"not a linkage database: table '{table}' is missing", path=path)
        lacking = [c for c in needed if c not in have[table]]
        if lacking:
            con.close()
            raise InputError(f"table '{table}' lacks column(s) {', '.join(lacking)}", path=path)
    con.execute("""CREATE TEMP VIEW src AS
        SELECT p.person_key::BIGINT AS person_key, e.agency::VARCHAR AS agency,
               e.service::VARCHAR AS service,
               e.contact_date::DATE AS contact_date
        FROM linkage.events e JOIN linkage.event_person p USING (agency, record_id)""")
    n_events, n_joined = con.execute(
        "SELECT (SELECT count(*) FROM linkage.events), (SELECT count(*) FROM src)").fetchone()
    if n_events != n_joined:
        con.close()
        raise InputError("events and event_person do not match one-to-one on "
                         "(agency, record_id); was the linkage run completed?", path=path)
    return con


def measures_from_db(path: str | Path, *, repeat_threshold: int = 5,
                     window_days: int = 365, scope: Scope = Scope()) -> dict[str, pd.DataFrame]:
    """Raw measures from a linkage database. UNPROTECTED: release with :func:`release`."""
    rule = RepeatRule(repeat_threshold, window_days)
    con = open_linkage(path)
    try:
        _check_agencies(con, scope, path)
        return _run(con, rule, scope)
    finally:
        con.close()


def run_metadata(path: str | Path) -> dict:
    """What ``simlink link`` recorded about the run (threshold, model estimates, time), for
    the report; {} when the table is absent. Values are JSON; none identifies anyone."""
    con = open_linkage(path)
    try:
        have = con.execute("SELECT 1 FROM duckdb_tables() WHERE database_name = 'linkage' "
                           "AND table_name = 'run_metadata'").fetchall()
        if not have:
            return {}
        out = {}
        for key, value in con.execute("SELECT key, value FROM linkage.run_metadata").fetchall():
            try:
                out[key] = json.loads(value)
            except (TypeError, ValueError):
                out[key] = value
        return out
    finally:
        con.close()


def measures_many(path: str | Path, settings: list[tuple[RepeatRule, Scope]]
                  ) -> list[dict[str, pd.DataFrame]]:
    """Raw measures for several (rule, scope) settings on one open database (the fast path
    for checking many releases). UNPROTECTED."""
    con = open_linkage(path)
    try:
        out = []
        for rule, scope in settings:
            _check_agencies(con, scope, path)
            out.append(_run(con, rule, scope))
        return out
    finally:
        con.close()
