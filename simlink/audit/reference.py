"""The attacker's public knowledge: name frequencies from a source other than the data.

A reference is a CSV with a header ``name,frequency`` (frequency: any non-negative number
proportional to how common the name is — a count, a share or a percentage) and optionally a
``field`` column saying which field the row is for (``given_name`` or ``family_name``); rows
without a field apply to both. Lines starting with ``#`` are comments. Names are normalised
exactly as the encoder normalises them, because the attacker knows the public schema.

Without a file, the audit uses the bundled US Census 1990 name lists (public domain): a
realistic "different source" for UK data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field as dataclass_field
from importlib import resources
from pathlib import Path

import pyarrow as pa

from simlink.errors import InputError
from simlink.agency.normalise import NORMALISERS

NAME_FIELDS = ("given_name", "family_name")
BUNDLED = "reference_us_census_1990.csv"


@dataclass(frozen=True)
class Reference:
    """Normalised name → relative frequency (sums to 1), per name field."""

    fields: dict[str, dict[str, float]]
    source: str
    by_year: dict[str, dict[int, dict[str, float]]] = dataclass_field(default_factory=dict)

    def names(self, field_name: str) -> dict[str, float]:
        return self.fields.get(field_name, {})

    def names_in_year(self, field_name: str, year: int) -> dict[str, float]:
        """The list for people born in ``year`` (the national list when there is none)."""
        return self.by_year.get(field_name, {}).get(year) or self.names(field_name)


def normalise_counts(counts: dict[str, float]) -> dict[str, float]:
    """Normalise names like the encoder, merge duplicates, scale to a distribution."""
    raw = list(counts)
    normalised = NORMALISERS["person_name"](pa.array(raw, pa.string())).values.to_pylist()
    merged: dict[str, float] = {}
    for name, value in zip(normalised, counts.values()):
        if name:
            merged[name] = merged.get(name, 0.0) + float(value)
    total = sum(merged.values())
    return {k: v / total for k, v in sorted(merged.items(), key=lambda kv: -kv[1])} if total > 0 else {}


def synth_reference(source: str = "synthetic generator's name tables") -> Reference:
    """The name tables ``simlink synth`` draws from: a perfect reference for synthetic data,
    the strongest (insider) case for an attack on files made from it."""

    def table(*files: str) -> dict[str, float]:
        counts: dict[str, float] = {}
        for name in files:
            text = resources.files("simlink.synth").joinpath("data", name).read_text("utf-8")
            for row in csv.DictReader(text.splitlines()):
                counts[row["name"]] = counts.get(row["name"], 0.0) + float(row["count_per_million"])
        return normalise_counts(counts)

    return Reference({"given_name": table("given_male.csv", "given_female.csv"),
                      "family_name": table("surnames.csv")}, source)


def read_reference(path: str | Path | None = None) -> Reference:
    """Read a reference CSV (see module docstring); ``None`` = the bundled census lists."""
    if path is None:
        text = resources.files("simlink.audit").joinpath(BUNDLED).read_text("utf-8")
        source = "bundled US Census 1990 name lists"
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            raise InputError("reference file cannot be read as UTF-8 text", path=path) from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "name" not in header or "frequency" not in header:
        raise InputError("reference file needs a header with columns name,frequency (and optionally field)", path=path)
    counts: dict[str, dict[str, float]] = {f: {} for f in NAME_FIELDS}
    yearly: dict[str, dict[int, dict[str, float]]] = {f: {} for f in NAME_FIELDS}
    for row_number, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            frequency = float(row["frequency"])
        except ValueError:
            raise InputError("frequency is not a number", path=path, row=row_number, column="frequency") from None
        if frequency < 0:
            raise InputError("frequency must not be negative", path=path, row=row_number, column="frequency")
        field_name = row.get("field", "")
        if field_name and field_name not in NAME_FIELDS:
            raise InputError(f"field must be one of {', '.join(NAME_FIELDS)} or empty", path=path,
                             row=row_number, column="field")
        year = row.get("year_of_birth", "")
        if year and not year.isdigit():
            raise InputError("year_of_birth must be a year or empty", path=path, row=row_number, column="year_of_birth")
        for target in ([field_name] if field_name else NAME_FIELDS):
            if year:  # a list by year of birth
                table = yearly[target].setdefault(int(year), {})
                table[row["name"]] = table.get(row["name"], 0.0) + frequency
            else:
                counts[target][row["name"]] = counts[target].get(row["name"], 0.0) + frequency
    for target in NAME_FIELDS:  # only lists by year: the national list is their sum
        if not counts[target]:
            for table in yearly[target].values():
                for name, frequency in table.items():
                    counts[target][name] = counts[target].get(name, 0.0) + frequency
    fields = {f: normalise_counts(c) for f, c in counts.items() if c}
    if not fields:
        raise InputError("reference file has no names", path=path)
    by_year = {f: {y: normalise_counts(c) for y, c in years.items()} for f, years in yearly.items() if years}
    return Reference(fields, source, by_year)


def write_reference(reference: Reference, path: str | Path) -> Path:
    """Write a reference CSV (by year of birth where it has lists by year)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "frequency", "field", "year_of_birth"])
        for f in NAME_FIELDS:
            writer.writerows([n, f"{p:.9g}", f, ""] for n, p in reference.names(f).items())
            for year, names in sorted(reference.by_year.get(f, {}).items()):
                writer.writerows([n, f"{p:.9g}", f, year] for n, p in names.items())
    return path


def reference_from_people(given: list[str | None], family: list[str | None], years: list[int | None],
                          source: str) -> Reference:
    """A list (national and by year of birth) counted over people: one entry per person,
    e.g. a different population than the one attacked."""
    fields: dict[str, dict[str, float]] = {}
    by_year: dict[str, dict[int, dict[str, float]]] = {}
    for f, names in (("given_name", given), ("family_name", family)):
        total: dict[str, float] = {}
        yearly: dict[int, dict[str, float]] = {}
        for name, year in zip(names, years):
            if not name:
                continue
            total[name] = total.get(name, 0.0) + 1
            if year is not None and year >= 0:
                yearly.setdefault(int(year), {})
                yearly[int(year)][name] = yearly[int(year)].get(name, 0.0) + 1
        fields[f] = normalise_counts(total)
        by_year[f] = {y: normalise_counts(c) for y, c in yearly.items()}
    return Reference(fields, source, by_year)
