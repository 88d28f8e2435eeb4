"""Scan written values for raw identifiers without false alarms from random numbers.

Filter words are random 64-bit integers; printed in decimal, any 8-digit date of birth turns
up inside one of them by chance every few runs. A number can only leak an identifier by *being*
it, so integers are compared whole and everything else is searched as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Written:
    """The values of one output, split into searchable text and whole numbers."""

    text_parts: list[str] = field(default_factory=list)
    numbers: set[str] = field(default_factory=set)

    def add(self, values: Iterable[object]) -> None:
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool):
                self.numbers.add(str(value))
            elif value is not None:
                self.text_parts.append(str(value))

    def leaked(self, identifiers: Iterable[str]) -> list[str]:
        text = "\n".join(self.text_parts)
        return sorted(value for value in identifiers if value in text or value in self.numbers)
