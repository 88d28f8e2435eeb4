"""Time ``simlink counts`` on synthetic linkage databases of 1M and 3M events.

The databases are random (no names): each person gets a heavy-tailed number of contacts
spread over two years and a random mix of services. Figures are printed and written to
benchmarks/results/counts_bench.json. Usage: python benchmarks/counts_bench.py [sizes...]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from simlink.counts import DisclosurePolicy, KNOWN_SERVICES, measures_from_db, release

RESULTS = Path(__file__).parent / "results" / "counts_bench.json"


def build_db(path: Path, n_events: int, seed: int = 0) -> dict:
    """Write events + event_person for ``n_events`` random contacts; return its shape."""
    rng = np.random.default_rng(seed)
    # Heavy tail: most people have 1-2 contacts, a few have dozens.
    per_person = np.minimum(rng.zipf(2.2, size=n_events), 200)
    cum = np.cumsum(per_person)
    n_people = int(np.searchsorted(cum, n_events) + 1)
    per_person = per_person[:n_people]
    per_person[-1] -= cum[n_people - 1] - n_events
    person = np.repeat(np.arange(n_people, dtype=np.int64), per_person)
    # Each person has a "home" service; 30% of their contacts go elsewhere.
    home = rng.integers(0, len(KNOWN_SERVICES), size=n_people)
    svc_idx = np.where(rng.random(n_events) < 0.7, home[person],
                       rng.integers(0, len(KNOWN_SERVICES), size=n_events))
    start = rng.integers(0, 730, size=n_people)
    offset = (start[person] + rng.exponential(60, size=n_events).astype(int)) % 730
    dates = np.datetime64("2023-01-01") + offset.astype("timedelta64[D]")
    services = np.array(KNOWN_SERVICES)[svc_idx]
    frame = pd.DataFrame({"agency": services, "record_id": np.arange(n_events).astype(str),
                          "service": services, "contact_date": dates,
                          "person_key": rng.permutation(n_people)[person]})
    con = duckdb.connect(str(path))
    con.register("f", frame)
    con.execute("CREATE TABLE events AS SELECT agency, record_id, service, "
                "contact_date::DATE AS contact_date FROM f")
    con.execute("CREATE TABLE event_person AS SELECT agency, record_id, person_key FROM f")
    con.close()
    return {"events": n_events, "people": n_people}


def bench(n_events: int, workdir: Path) -> dict:
    db = workdir / f"bench_{n_events}.duckdb"
    t0 = time.perf_counter()
    shape = build_db(db, n_events)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    measures_from_db(db)
    t_measures = time.perf_counter() - t0
    t0 = time.perf_counter()
    rel = release(db)
    t_release = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = release(db, repeat_threshold=6)  # checked against the first in the ledger
    t_second = time.perf_counter() - t0
    t0 = time.perf_counter()
    release(db, policy=DisclosurePolicy(dp_epsilon=1.0))
    t_dp = time.perf_counter() - t0
    db.unlink()
    row = {**shape, "load_average_1m": round(os.getloadavg()[0], 2), "build_db_s": round(t_build, 2), "compute_measures_s": round(t_measures, 2),
           "release_default_s": round(t_release, 2),
           "release_second_checked_s": round(t_second, 2),
           "cells": rel.meta["cells"],
           "cells_suppressed_for_overlap_second": second.meta["cells_suppressed_for_overlap"],
           "release_dp_s": round(t_dp, 2),
           "cells_suppressed_primary": rel.suppressed_primary,
           "cells_suppressed_secondary": rel.suppressed_secondary}
    print(json.dumps(row), flush=True)
    return row


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(n, Path(tmp)) for n in sizes]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "duckdb": duckdb.__version__,
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "note": "release_* = measures + disclosure control + release ledger (the whole "
                "`simlink counts` work); the second release is checked against the first",
        "runs": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000, 3_000_000])
