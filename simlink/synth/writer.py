"""Writing the synthetic world to disk: agency CSVs, the answer key, optional debug files.

Blocks are spilled to Parquet parts in a temporary folder inside the output folder; DuckDB
then writes each agency's CSV sorted by contact time (as an agency extract would be) — out of
core, so memory stays bounded whatever the number of people — and ``truth.csv`` sorted by
agency and record id. Nothing but the contract columns reaches the agency files; which
person a record belongs to is only in ``truth.csv``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from simlink import outputs
from simlink.errors import OutputExistsError, SimlinkError
from simlink.synth.generator import Block, SynthConfig, iter_blocks
from simlink.synth.profiles import AGENCIES, ERROR_BIT

CONTRACT_COLUMNS = ("record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode",
                    "contact_date", "nhs_number")
TRUTH_FILE = "truth.csv"
TRUE_COUNTS_FILE = "true_counts.json"
DEBUG_DIR = "debug"


@dataclass
class SynthSummary:
    out_dir: str
    people: int
    records: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{a} {n:,}" for a, n in self.records.items())
        return f"synthesised {self.people:,} people, {sum(self.records.values()):,} records ({parts}) in {self.out_dir}"


def agency_file(out_dir: str | Path, agency: str) -> Path:
    return Path(out_dir) / f"{agency}.csv"


def _outputs(out_dir: Path) -> list[Path]:
    return [agency_file(out_dir, a) for a in AGENCIES] + [out_dir / TRUTH_FILE, out_dir / TRUE_COUNTS_FILE, out_dir / DEBUG_DIR]


def _part_table(agency: str, block: Block) -> pa.Table:
    ab = block.agencies[agency]
    data = {"record_id": pa.array(ab.record_id, pa.string())}
    for name in CONTRACT_COLUMNS[1:]:
        data[name] = pa.array(ab.records.columns[name], pa.string())
    data["agency"] = pa.array([agency] * len(ab.record_id), pa.string())
    data["person_id"] = pa.array(ab.person_id, pa.int64())
    data["sort_day"] = pa.array(ab.contact_day.astype("datetime64[D]").astype("int64"), pa.int64())
    data["sort_minute"] = pa.array(ab.contact_minute, pa.int64())
    data["applicable"] = pa.array(ab.records.applicable, pa.uint32())
    data["applied"] = pa.array(ab.records.applied, pa.uint32())
    return pa.table(data)


def _copy_sql(select: str, target: Path) -> str:
    return f"COPY ({select}) TO '{target.as_posix()}' (FORMAT csv, HEADER true, DELIMITER ',')"


def write_synth(config: SynthConfig, out_dir: str | Path, *, overwrite: bool = False, debug: bool = False,
                progress: Callable[[int], None] | None = None, memory_limit: str = "2GB") -> SynthSummary:
    """Generate and write the synthetic agency files and ``truth.csv`` into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SimlinkError("output path exists and is not a folder", path=out)
    outputs.check_creatable_folder(out)
    existing = [p for p in _outputs(out) if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError("output already exists (use --overwrite to replace it)", path=existing[0])
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".synth-parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    summary = SynthSummary(str(out), config.people, {a: 0 for a in AGENCIES})
    try:
        for block in iter_blocks(config):
            for agency in AGENCIES:
                table = _part_table(agency, block)
                summary.records[agency] += table.num_rows
                pq.write_table(table, work / f"{agency}-{block.index:06d}.parquet", compression="zstd")
            if progress is not None:
                progress(len(block.people))
        con = duckdb.connect()
        con.execute(f"SET memory_limit='{memory_limit}'")
        con.execute(f"SET temp_directory='{(work / 'duckdb-tmp').as_posix()}'")
        columns = ", ".join(CONTRACT_COLUMNS)
        for agency in AGENCIES:
            parts = (work / f"{agency}-*.parquet").as_posix()
            con.execute(_copy_sql(f"SELECT {columns} FROM read_parquet('{parts}') "
                                  "ORDER BY sort_day, sort_minute, record_id", work / agency_file(out, agency).name))
        every = (work / "*.parquet").as_posix()
        con.execute(_copy_sql(f"SELECT agency, record_id, person_id FROM read_parquet('{every}') "
                              "ORDER BY agency, record_id", work / TRUTH_FILE))
        if debug:
            (out / DEBUG_DIR).mkdir(exist_ok=True)
            con.execute(f"COPY (SELECT agency, record_id, person_id, applicable, applied FROM read_parquet('{every}') "
                        f"ORDER BY agency, record_id) TO '{(out / DEBUG_DIR / 'errors.parquet').as_posix()}' (FORMAT parquet)")
            legend = {"bits": ERROR_BIT, "rates": {a: r.as_dict() for a, r in config.rates().items()}}
            (out / DEBUG_DIR / "error_bits.json").write_text(json.dumps(legend, indent=2, sort_keys=True))
        con.close()
        # Only complete files appear in OUT: an interrupted run leaves none of them half-written.
        for agency in AGENCIES:
            os.replace(work / agency_file(out, agency).name, agency_file(out, agency))
        os.replace(work / TRUTH_FILE, out / TRUTH_FILE)
        write_true_counts(out)
    except (OSError, duckdb.IOException) as exc:
        raise SimlinkError(f"cannot write ({outputs.reason(exc)})", path=out) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def write_true_counts(out_dir: Path, *, repeat_threshold: int = 5, window_days: int = 365) -> Path:
    """``true_counts.json``: the counts measures computed on the truth (UNPROTECTED answer key)."""
    from simlink.counts import compute_measures
    from simlink.synth import truth_events

    measures = compute_measures(truth_events(out_dir), repeat_threshold=repeat_threshold, window_days=window_days)
    document = {
        "note": "exact counts on the synthetic truth: an answer key for evaluation, never a release",
        "repeat_threshold": repeat_threshold,
        "window_days": window_days,
        "measures": {name: json.loads(frame.reset_index(drop=frame.index.name is None).to_json(orient="records", date_format="iso"))
                     for name, frame in measures.items()},
    }
    path = out_dir / TRUE_COUNTS_FILE
    outputs.write_text(path, json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path
