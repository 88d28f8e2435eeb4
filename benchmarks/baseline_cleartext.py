"""Cleartext baseline: Splink on the RAW synthetic identifiers, the usual tuned setup.

The best one can do without privacy, on exactly the same CSVs and evaluated the same way as
the encoded linkage: the same simlink normalisers, identical records collapsed, dedupe_only
on the union, the same blocking idea (the same derivations as the keyed blocking tokens,
unhashed, OR-ed), Splink's out-of-the-box name (Jaro-Winkler 0.92/0.88/0.7 with term
frequencies), date-of-birth (Levenshtein, month, year, 10 years), postcode (sector,
district, area) and NHS number (exact, Damerau-Levenshtein 1) comparisons, and the same
training recipe (prior from deterministic rules, u by random sampling, EM on date of birth
and on names).

    python benchmarks/baseline_cleartext.py --people 20000 --errors medium
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

import linkeval
from simlink.agency.blocking import DERIVE
from simlink.link.model import PRIOR_RECALL
from simlink.agency.normalise import NORMALISERS
from simlink.schema import load_schema

FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")


def _read(csv_paths: list[Path]) -> pd.DataFrame:
    frames = []
    for path in csv_paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.insert(0, "agency", path.stem)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def prepare_records(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalise, derive the blocking columns, collapse identical records."""
    schema = load_schema(None)
    out = pd.DataFrame({"agency": frame["agency"], "record_id": frame["record_id"]})
    for name in FIELDS:
        spec = schema.field(name)
        raw = frame[name].to_numpy() if name in frame else [None] * len(frame)
        values = NORMALISERS[spec.normaliser](pa.array(raw, pa.string())).values
        out[name] = values.to_pandas()
    for key in schema.blocking:
        parts = []
        for part in key.parts:
            field_name, derivation = part.split(":")
            if field_name not in out:
                break
            derive = DERIVE[(schema.field(field_name).normaliser, derivation)]
            col = out[field_name].map(lambda v, d=derive: d(v) if isinstance(v, str) and v else None)
            parts.append(col)
        else:
            joined = parts[0].astype(str)
            for col in parts[1:]:
                joined = joined + "|" + col.astype(str)
            out[f"blk__{key.name}"] = joined.where(pd.concat(parts, axis=1).notna().all(axis=1), None)
    value_cols = [c for c in out.columns if c not in ("agency", "record_id")]
    out["rec_id"] = (pd.util.hash_pandas_object(out[value_cols], index=False).to_numpy() >> 1).astype("int64")
    distinct = out.drop_duplicates("rec_id")[["rec_id", *value_cols]].reset_index(drop=True)
    return out[["agency", "record_id", "rec_id"]], distinct


def settings(blocking_columns: list[str]):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[block_on(c) for c in blocking_columns],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.DamerauLevenshteinAtThresholds("nhs_number", [1]),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def run(csv_paths: list[Path], truth_path: Path, *, thresholds=(0.5, 0.8, 0.9, 0.95, 0.99),
        threads: int | None = None, keep: dict | None = None) -> dict:
    """Link the CSVs in clear and score the persons at each threshold. ``keep``, when given,
    receives the scored pairs (``scored``) and the events with their record key (``events``),
    so a caller can cluster and score them further (the suite's B-cubed and headline counts)."""
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    events, distinct = prepare_records(_read(csv_paths))
    seconds["load"] = time.perf_counter() - t
    con = duckdb.connect()
    con.execute("SET lambda_syntax='ENABLE_SINGLE_ARROW'")  # Splink's date-of-birth levels use x -> ...
    if threads:
        con.execute(f"SET threads={threads}")
    con.register("distinct_frame", distinct)
    con.execute("CREATE TABLE clear_records AS SELECT * FROM distinct_frame")
    db = DuckDBAPI(connection=con)
    blocking_columns = [c for c in distinct.columns if c.startswith("blk__")]
    linker = Linker(db.register("clear_records"), settings(blocking_columns), log_level=logging.WARNING)
    t = time.perf_counter()
    core = ["given_name", "family_name", "date_of_birth", "postcode"]
    rules = [" AND ".join(f"l.{c} = r.{c}" for c in core if c != skip) for skip in core]
    linker.training.estimate_probability_two_random_records_match(rules, recall=PRIOR_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    for rule in (block_on("date_of_birth"), block_on("given_name", "family_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=2e6)
    seconds["train"] = time.perf_counter() - t
    t = time.perf_counter()
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    blocked_pairs = int(blocked.as_duckdbpyrelation().count("*").fetchall()[0][0])
    seconds["block"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = linker.inference.predict(threshold_match_probability=min(thresholds), warning_mode="never")
    frame = scored.as_pandas_dataframe()[["rec_id_l", "rec_id_r", "match_probability"]]
    seconds["predict"] = time.perf_counter() - t
    t = time.perf_counter()
    linker.clustering.cluster_pairwise_predictions_at_threshold(scored, threshold_match_probability=0.95)
    seconds["cluster"] = time.perf_counter() - t
    truth = pd.read_csv(truth_path)
    sweep = {}
    for threshold in thresholds:
        assigned = linkeval.cluster_at(frame, events, threshold, left="rec_id_l", right="rec_id_r", node="rec_id")
        sweep[str(threshold)] = linkeval.pairwise_quality(assigned, truth)
    con.close()
    if keep is not None:
        keep.update(scored=frame, events=events)
    return {"seconds": seconds, "blocked_pairs": blocked_pairs, "distinct_records": len(distinct), "sweep": sweep}


def main() -> None:
    args, _, data = linkeval.quality_data_from_args(__doc__.splitlines()[0])
    result = run(data["csv"], data["truth"])
    print(json.dumps(result, indent=1))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"baseline_cleartext_{args.errors}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
