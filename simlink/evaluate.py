"""Linkage quality against a known answer (synthetic data): pairs, clusters and counts.

Pairwise precision and recall are computed from the contingency table of predicted person
by true person, never by listing pairs: with ``n_ij`` records in predicted cluster ``i`` and
true person ``j``, ``a_i`` and ``b_j`` the cluster sizes,

* true-positive pairs = sum C(n_ij, 2), predicted pairs = sum C(a_i, 2), true pairs = sum C(b_j, 2);
* B-cubed precision = (1/N) sum n_ij^2 / a_i and recall = (1/N) sum n_ij^2 / b_j.

So a million records cost one group-by. When nothing is predicted linked (or nothing truly
is) precision (recall) is taken as 1: no claim was wrong (no link was missed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simlink.errors import InputError

KEY = ["agency", "record_id"]


@dataclass(frozen=True)
class LinkageQuality:
    records: int
    predicted_persons: int
    true_persons: int
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int
    pair_precision: float
    pair_recall: float
    pair_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _check_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"required column missing (found: {', '.join(map(str, frame.columns))})",
                         path=name, column=missing[0])


def _check_unique(frame: pd.DataFrame, name: str) -> None:
    duplicated = int(frame.duplicated(KEY).sum())
    if duplicated:
        raise InputError(f"{duplicated} events appear more than once (agency, record_id)", path=name)


def align(predicted: pd.DataFrame, truth: pd.DataFrame, *, predicted_name: str = "prediction",
          truth_name: str = "truth") -> pd.DataFrame:
    """One row per event with its predicted and true person; every event must be in both."""
    _check_columns(predicted, KEY + ["person_key"], predicted_name)
    _check_columns(truth, KEY + ["person_id"], truth_name)
    pred = predicted[KEY + ["person_key"]].astype({"agency": str, "record_id": str})
    true = truth[KEY + ["person_id"]].astype({"agency": str, "record_id": str})
    _check_unique(pred, predicted_name)
    _check_unique(true, truth_name)
    merged = pred.merge(true, on=KEY, how="outer", indicator=True)
    only_pred = int((merged["_merge"] == "left_only").sum())
    only_true = int((merged["_merge"] == "right_only").sum())
    if only_pred or only_true:
        parts = []
        if only_true:
            parts.append(f"{only_true} events of {truth_name} are missing from {predicted_name}")
        if only_pred:
            parts.append(f"{only_pred} events of {predicted_name} are missing from {truth_name}")
        raise InputError("; ".join(parts) + " (they must cover the same events)", path=predicted_name)
    if merged["person_key"].isna().any() or merged["person_id"].isna().any():
        raise InputError("some events have no person (empty person_key or person_id)", path=predicted_name)
    return merged.drop(columns="_merge")


def evaluate_clusters(predicted: pd.DataFrame, truth: pd.DataFrame, *, predicted_name: str = "prediction",
                      truth_name: str = "truth") -> LinkageQuality:
    """Pairwise and B-cubed quality of predicted person clusters against the truth."""
    events = align(predicted, truth, predicted_name=predicted_name, truth_name=truth_name)
    n = len(events)
    if n == 0:
        raise InputError("no events to evaluate", path=predicted_name)
    pred_code = pd.factorize(events["person_key"])[0]
    true_code = pd.factorize(events["person_id"])[0]
    a = np.bincount(pred_code)
    b = np.bincount(true_code)
    cells = pd.DataFrame({"p": pred_code, "t": true_code}).value_counts()
    n_ij = cells.to_numpy().astype(np.int64)
    cell_p = cells.index.get_level_values("p").to_numpy()
    cell_t = cells.index.get_level_values("t").to_numpy()
    correct, predicted_pairs, true_pairs = _pairs(n_ij), _pairs(a), _pairs(b)
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    squared = n_ij.astype(float) ** 2
    b3_precision = float((squared / a[cell_p]).sum() / n)
    b3_recall = float((squared / b[cell_t]).sum() / n)
    return LinkageQuality(
        records=n, predicted_persons=len(a), true_persons=len(b),
        predicted_pairs=predicted_pairs, true_pairs=true_pairs, correct_pairs=correct,
        pair_precision=precision, pair_recall=recall, pair_f1=_f1(precision, recall),
        bcubed_precision=b3_precision, bcubed_recall=b3_recall, bcubed_f1=_f1(b3_precision, b3_recall),
    )


def _split_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Key columns (index levels and non-numeric columns) and numeric value columns."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    values = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    keys = [c for c in frame.columns if c not in values]
    return frame, keys, values


def count_errors(predicted: dict[str, pd.DataFrame], true: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Error of every cell of every count measure: predicted vs true, aligned on key columns.

    Keys are the index levels and non-numeric columns; each numeric column is a value. A
    row present on one side only counts as 0 on the other (a count of nobody); NaN (e.g. a
    suppressed cell) stays NaN. Returns per measure a long table: keys, ``column``,
    ``predicted``, ``true``, ``abs_error``, ``rel_error`` (abs_error / |true|, NaN if true is 0).
    """
    out: dict[str, pd.DataFrame] = {}
    for name in sorted(set(predicted) | set(true)):
        if name not in predicted or name not in true:
            side = "prediction" if name not in predicted else "truth"
            raise InputError(f"count measure '{name}' is missing from the {side}")
        p, p_keys, p_values = _split_columns(predicted[name])
        t, t_keys, t_values = _split_columns(true[name])
        if p_keys != t_keys:
            raise InputError(f"count measure '{name}' has different key columns in prediction and truth")
        values = [c for c in t_values if c in p_values]
        merged = p[p_keys + values].merge(t[t_keys + values], on=t_keys, how="outer",
                                          suffixes=("__pred", "__true"), indicator=True)
        long = []
        for column in values:
            part = merged[t_keys].copy()
            pred_v = merged[f"{column}__pred"].where(merged["_merge"] != "right_only", 0.0)
            true_v = merged[f"{column}__true"].where(merged["_merge"] != "left_only", 0.0)
            part["column"] = column
            part["predicted"] = pred_v.astype(float)
            part["true"] = true_v.astype(float)
            part["abs_error"] = (part["predicted"] - part["true"]).abs()
            denominator = part["true"].abs().replace(0.0, np.nan)
            part["rel_error"] = part["abs_error"] / denominator
            long.append(part)
        out[name] = pd.concat(long, ignore_index=True) if long else pd.DataFrame(columns=t_keys + ["column"])
    return out


def summarise_count_errors(errors: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per measure and value column: cells, mean and max absolute error, mean relative error."""
    rows = []
    for name, frame in errors.items():
        for column, part in frame.groupby("column", sort=True):
            rows.append({"measure": name, "column": column, "cells": len(part),
                         "mean_abs_error": part["abs_error"].mean(), "max_abs_error": part["abs_error"].max(),
                         "mean_rel_error": part["rel_error"].mean()})
    return pd.DataFrame(rows, columns=["measure", "column", "cells", "mean_abs_error", "max_abs_error", "mean_rel_error"])


def read_predicted(path: str | Path) -> pd.DataFrame:
    """Predicted clusters from a linkage database (table event_person) or a CSV/Parquet file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        try:
            frame = pd.read_csv(path, dtype={"agency": str, "record_id": str})
        except (ValueError, pd.errors.ParserError):
            raise InputError("not a readable CSV file", path=path) from None
    elif suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError):
            raise InputError("not a readable Parquet file", path=path) from None
    else:
        import duckdb

        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            raise InputError("not a DuckDB linkage database, CSV or Parquet file", path=path) from None
        try:
            frame = con.execute("SELECT agency, record_id, person_key FROM event_person").df()
        except duckdb.Error:
            raise InputError("linkage database has no table event_person(agency, record_id, person_key)", path=path) from None
        finally:
            con.close()
    _check_columns(frame, KEY + ["person_key"], str(path))
    return frame


def evaluate_files(linkage: str | Path, truth: str | Path) -> LinkageQuality:
    """:func:`evaluate_clusters` on files (what ``simlink evaluate`` runs)."""
    from simlink.synth import read_truth

    return evaluate_clusters(read_predicted(linkage), read_truth(truth),
                             predicted_name=str(linkage), truth_name=str(truth))
