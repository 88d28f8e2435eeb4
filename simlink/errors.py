"""Errors that a data manager can act on.

Every error simlink raises on purpose is a :class:`SimlinkError`. Its message names the
file, the row and the column at fault — and never the value found there, because the value
may be a name or a date of birth and error messages end up in logs, tickets and e-mails.
"""

from __future__ import annotations

from pathlib import Path


class SimlinkError(Exception):
    """A problem with the user's input or settings, reported as one safe line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.row is not None:
            # Data rows count from 1 after the header: "data row 4" is line 5 of a CSV.
            where.append("header row" if self.row == 0 else f"data row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail


class InputError(SimlinkError):
    """The input data (a CSV, Parquet or encoded file) cannot be used as it is."""


class SchemaError(SimlinkError):
    """The linkage schema is invalid or does not match between parties."""


class KeyFileError(SimlinkError):
    """The secret key file is missing, unreadable or malformed."""


class OutputExistsError(SimlinkError):
    """Refuse to overwrite a result unless the user says so."""
