"""Read a linkage database into pandas for an analysis of your own, inside the linkage unit.

Usage: python examples/event_person_pandas.py LINKAGE.duckdb
event_person(agency, record_id, person_key) says which events are the same person;
events(agency, record_id, service, contact_date) says what happened. Counts computed from
them are EXACT and may identify people: only protected counts may leave the linkage unit.
"""
import sys

import duckdb
import pandas as pd

import simlink

with duckdb.connect(sys.argv[1], read_only=True) as con:
    events = con.execute("""SELECT e.service, e.contact_date, p.person_key
                            FROM events e JOIN event_person p USING (agency, record_id)""").df()

# People by the number of services that saw them, and by quarter of first contact (exact: stays here).
per_person = events.groupby("person_key").agg(services=("service", "nunique"), first=("contact_date", "min"))
per_person["first_quarter"] = per_person["first"].dt.to_period("Q").astype(str)
exact = per_person.groupby(["first_quarter", "services"]).size().unstack(fill_value=0).stack()  # zeros kept

# To share it: every cell through disclosure control (suppress 1-7, round to 5), no totals added.
protected = simlink.protect({cell: int(n) for cell, n in exact.items()}, simlink.DisclosurePolicy())
shown = pd.Series([protected.values[cell] for cell in exact.index], index=exact.index, dtype="object")
print("people by quarter of first contact (rows) and number of services seen by (columns)")
print(shown.fillna("*").unstack("services").to_string())
print("* suppressed (small count, or would reveal one); other counts rounded to the nearest 5")
