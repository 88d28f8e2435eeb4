"""Dice similarity of stored Bloom filters as Splink comparison levels and comparisons.

The filters are stored as ``<field>__w0..__wN`` signed 64-bit words plus ``<field>__pop``
(popcount, 0 = missing). The Dice coefficient of two filters is
``2 * |a & b| / (|a| + |b|)``; it is written here as plain SQL (``bit_count``, ``&``,
``CAST``) that DuckDB and Spark SQL both run, so no Python UDF sits on the hot path.
Each ``bit_count`` term is cast to INT because DuckDB returns TINYINT and the sum overflows.
Thresholds are tested without a division (``2 * inter >= t * (pop_l + pop_r)``).

These are ordinary Splink creators: ``DiceAtThresholds("family_name", 8, [0.9, 0.8])``
works in any Splink settings, and ``.get_comparison("spark")`` gives Spark SQL.
"""

from __future__ import annotations

from typing import Sequence

from splink.internals.column_expression import ColumnExpression
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.comparison_level_library import ElseLevel
from splink.internals.dialects import SplinkDialect


class _Names:
    """The quoted ``_l`` / ``_r`` names of a column in a dialect (what the levels use)."""

    __slots__ = ("name_l", "name_r")

    def __init__(self, name_l: str, name_r: str) -> None:
        self.name_l, self.name_r = name_l, name_r


_NAMES: dict[tuple[str, str], _Names] = {}


def _col(name: str, dialect: SplinkDialect) -> _Names:
    """Column names for SQL; cached, because Splink's ColumnExpression parses with sqlglot on
    every access and format-2 levels name the same columns hundreds of times."""
    key = (name, dialect.sql_dialect_str)
    found = _NAMES.get(key)
    if found is None:
        expression = ColumnExpression(name)
        expression.sql_dialect = dialect
        found = _NAMES[key] = _Names(expression.name_l, expression.name_r)
    return found


def intersection_sql(field: str, words: int, dialect: SplinkDialect) -> str:
    """Number of bits set in both filters: a sum of per-word popcounts, each cast to INT."""
    terms = []
    for i in range(words):
        c = _col(f"{field}__w{i}", dialect)
        terms.append(f"CAST(bit_count({c.name_l} & {c.name_r}) AS INT)")
    return "(" + " + ".join(terms) + ")"


def pop_sum_sql(field: str, dialect: SplinkDialect) -> str:
    c = _col(f"{field}__pop", dialect)
    return f"(CAST({c.name_l} AS INT) + CAST({c.name_r} AS INT))"


class DiceNullLevel(ComparisonLevelCreator):
    """Either filter is empty (the value was missing at the agency)."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        c = _col(f"{self.field}__pop", sql_dialect)
        return (f"{c.name_l} IS NULL OR {c.name_r} IS NULL OR {c.name_l} = 0 OR {c.name_r} = 0")

    def create_label_for_charts(self) -> str:
        return f"{self.field} missing"


class FilterExactLevel(ComparisonLevelCreator):
    """Identical filters. With ``hash_column`` (a hash of the words) the test is one equality
    and the level can carry a term-frequency adjustment on that column; otherwise every word
    is compared."""

    def __init__(self, field: str, words: int, hash_column: str | None = None,
                 term_frequency_adjustments: bool = False) -> None:
        self.field, self.words, self.hash_column = field, words, hash_column
        self.is_exact_match_level = True
        if term_frequency_adjustments:
            if hash_column is None:
                raise ValueError("term-frequency adjustment needs a filter hash column")
            self.configure(tf_adjustment_column=hash_column, tf_adjustment_weight=1.0)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        if self.hash_column:
            c = _col(self.hash_column, sql_dialect)
            return f"{c.name_l} = {c.name_r}"
        parts = []
        for i in range(self.words):
            c = _col(f"{self.field}__w{i}", sql_dialect)
            parts.append(f"{c.name_l} = {c.name_r}")
        return " AND ".join(parts)

    def create_label_for_charts(self) -> str:
        return f"{self.field} identical"


class DiceLevel(ComparisonLevelCreator):
    """Dice similarity of the two filters at or above ``threshold``."""

    def __init__(self, field: str, words: int, threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("Dice thresholds must lie in (0, 1]")
        self.field, self.words, self.threshold = field, words, threshold

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        inter = intersection_sql(self.field, self.words, sql_dialect)
        return f"2 * {inter} >= {self.threshold!r} * {pop_sum_sql(self.field, sql_dialect)}"

    def create_label_for_charts(self) -> str:
        return f"{self.field} Dice >= {self.threshold:g}"


class DiceAtThresholds(ComparisonCreator):
    """Levels: missing, identical, Dice >= each threshold (descending), all other pairs."""

    def __init__(self, field: str, words: int, thresholds: Sequence[float] = (0.9, 0.8, 0.7),
                 *, hash_column: str | None = None, term_frequency_adjustments: bool = False) -> None:
        self.field, self.words = field, words
        self.thresholds = sorted({float(t) for t in thresholds}, reverse=True)
        self.hash_column = hash_column
        self.tf = term_frequency_adjustments
        super().__init__(f"{field}__pop")

    def create_comparison_levels(self) -> list[ComparisonLevelCreator]:
        levels: list[ComparisonLevelCreator] = [
            DiceNullLevel(self.field),
            FilterExactLevel(self.field, self.words, self.hash_column, self.tf),
        ]
        levels += [DiceLevel(self.field, self.words, t) for t in self.thresholds if t < 1]
        levels.append(ElseLevel())
        return levels

    def create_description(self) -> str:
        shown = ", ".join(f"{t:g}" for t in self.thresholds)
        return f"Dice of {self.field} filters (identical, >= {shown})" if shown else f"{self.field} filters identical"

    def create_output_column_name(self) -> str:
        return self.field


# ------------------------------------------------------------------ format 2: scoped copies


class ScopedCopy:
    """One stored copy of a field: its column prefix, its words, and the blocking-token column
    whose equality makes two records' copies comparable (None: always comparable)."""

    def __init__(self, prefix: str, words: int, scope_column: str | None) -> None:
        self.prefix, self.words, self.scope_column = prefix, words, scope_column

    def comparable_sql(self, dialect: SplinkDialect) -> str:
        pop = _col(f"{self.prefix}__pop", dialect)
        present = f"{pop.name_l} > 0 AND {pop.name_r} > 0"
        if self.scope_column is None:
            return f"({present})"
        token = _col(self.scope_column, dialect)
        return f"({token.name_l} = {token.name_r} AND {present})"

    def dice_sql(self, dialect: SplinkDialect) -> str:
        inter = intersection_sql(self.prefix, self.words, dialect)
        return f"(2.0 * {inter} / {pop_sum_sql(self.prefix, dialect)})"


def _any(conditions: list[str]) -> str:
    return "(" + " OR ".join(conditions) + ")" if conditions else "FALSE"


def _best_dice_sql(copies: Sequence[ScopedCopy], dialect: SplinkDialect) -> str:
    """The highest Dice over the copies comparable for this pair (NULL when none is)."""
    terms = [f"CASE WHEN {c.comparable_sql(dialect)} THEN {c.dice_sql(dialect)} END" for c in copies]
    return terms[0] if len(terms) == 1 else f"GREATEST({', '.join(terms)})"


class ScopedNullLevel(ComparisonLevelCreator):
    """No copy of the field is comparable (value or scope missing, or scopes differ) and no
    token proves the values equal: the pair says nothing about this field."""

    def __init__(self, field: str, copies: Sequence[ScopedCopy], exact_tokens: Sequence[str]) -> None:
        self.field, self.copies, self.exact_tokens = field, list(copies), list(exact_tokens)
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        known = [c.comparable_sql(sql_dialect) for c in self.copies]
        known += [f"{_col(t, sql_dialect).name_l} = {_col(t, sql_dialect).name_r}" for t in self.exact_tokens]
        return f"NOT COALESCE({_any(known)}, FALSE)"

    def create_label_for_charts(self) -> str:
        return f"{self.field} not comparable"


class ScopedExactLevel(ComparisonLevelCreator):
    """Equal values: a token made of the whole value agrees, or a comparable copy is identical."""

    def __init__(self, field: str, copies: Sequence[ScopedCopy], exact_tokens: Sequence[str]) -> None:
        self.field, self.copies, self.exact_tokens = field, list(copies), list(exact_tokens)
        self.is_exact_match_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        tests = [f"{_col(t, sql_dialect).name_l} = {_col(t, sql_dialect).name_r}" for t in self.exact_tokens]
        for c in self.copies:
            words = " AND ".join(f"{_col(f'{c.prefix}__w{i}', sql_dialect).name_l} = "
                                 f"{_col(f'{c.prefix}__w{i}', sql_dialect).name_r}" for i in range(c.words))
            tests.append(f"({c.comparable_sql(sql_dialect)} AND {words})")
        return f"COALESCE({_any(tests)}, FALSE)"

    def create_label_for_charts(self) -> str:
        return f"{self.field} identical"


class ScopedDiceLevel(ComparisonLevelCreator):
    """The best Dice over the comparable copies is at least ``threshold``."""

    def __init__(self, field: str, copies: Sequence[ScopedCopy], threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("Dice thresholds must lie in (0, 1]")
        self.field, self.copies, self.threshold = field, list(copies), threshold

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        return f"COALESCE({_best_dice_sql(self.copies, sql_dialect)} >= {self.threshold!r}, FALSE)"

    def create_label_for_charts(self) -> str:
        return f"{self.field} Dice >= {self.threshold:g}"


class TokenNullLevel(ComparisonLevelCreator):
    """The value is missing on either side (its whole-value token is null)."""

    def __init__(self, field: str, token: str) -> None:
        self.field, self.token = field, token
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        c = _col(self.token, sql_dialect)
        return f"{c.name_l} IS NULL OR {c.name_r} IS NULL"

    def create_label_for_charts(self) -> str:
        return f"{self.field} missing"


class ComparedLevel(ComparisonLevelCreator):
    """Some copy was comparable (and, by the earlier levels, dissimilar)."""

    def __init__(self, field: str, copies: Sequence[ScopedCopy]) -> None:
        self.field, self.copies = field, list(copies)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        return f"COALESCE({_any([c.comparable_sql(sql_dialect) for c in self.copies])}, FALSE)"

    def create_label_for_charts(self) -> str:
        return f"{self.field} compared, different"


class ScopedDice(ComparisonCreator):
    """A field stored as copies salted by blocking keys (format 2).

    Levels: not comparable (null), identical, best Dice over the comparable copies at or
    above each threshold, all other comparable pairs. ``exact_tokens`` are blocking-token
    columns made only of the whole value of this field (e.g. ``blk__dob`` for the date of
    birth): their equality proves the values equal even when no copy is comparable.
    """

    def __init__(self, field: str, copies: Sequence[ScopedCopy], thresholds: Sequence[float] = (0.9, 0.75),
                 *, exact_tokens: Sequence[str] = (), value_token: str | None = None) -> None:
        self.field, self.copies = field, list(copies)
        self.thresholds = sorted({float(t) for t in thresholds}, reverse=True)
        self.exact_tokens = list(exact_tokens)
        self.value_token = value_token
        super().__init__({f"copy_{i}": f"{c.prefix}__pop" for i, c in enumerate(self.copies)})

    def create_comparison_levels(self) -> list[ComparisonLevelCreator]:
        if self.value_token:
            # The field has a token of its whole value (the date of birth, the postcode): every
            # pair knows whether the values are missing or equal, whatever the scopes. Only
            # the similarity of unequal values needs a comparable copy.
            levels: list[ComparisonLevelCreator] = [
                TokenNullLevel(self.field, self.value_token),
                ScopedExactLevel(self.field, self.copies, self.exact_tokens),
            ]
            levels += [ScopedDiceLevel(self.field, self.copies, t) for t in self.thresholds if t < 1]
            levels.append(ElseLevel())  # different, whether or not a copy could measure how much
            return levels
        levels = [
            ScopedNullLevel(self.field, self.copies, self.exact_tokens),
            ScopedExactLevel(self.field, self.copies, self.exact_tokens),
        ]
        levels += [ScopedDiceLevel(self.field, self.copies, t) for t in self.thresholds if t < 1]
        levels.append(ElseLevel())
        return levels

    def create_description(self) -> str:
        shown = ", ".join(f"{t:g}" for t in self.thresholds)
        return f"best Dice of {self.field} over comparable copies (identical, >= {shown})"

    def create_output_column_name(self) -> str:
        return self.field


class _NameLevel(ComparisonLevelCreator):
    """A level of :class:`NamesComparison`, written over the two names' best similarities."""

    def __init__(self, label: str, condition: str, names: "NamesComparison", *, null: bool = False,
                 exact: bool = False) -> None:
        self.label, self.condition, self.names = label, condition, names
        self.is_null_level = null
        if exact:
            self.is_exact_match_level = True
            if names.tf_column:
                self.configure(tf_adjustment_column=names.tf_column, tf_adjustment_weight=1.0,
                               disable_tf_exact_match_detection=True)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        g, f = self.names.similarity_sql(0, sql_dialect), self.names.similarity_sql(1, sql_dialect)
        return self.condition.format(G=f"COALESCE({g}, -1.0)", F=f"COALESCE({f}, -1.0)")

    def create_label_for_charts(self) -> str:
        return self.label


class NamesComparison(ComparisonCreator):
    """Given and family name together, each stored as copies salted by scopes (format 2).

    One comparison, not two: when a whole-name token agrees both names agree at once, and two
    separate comparisons would count that evidence twice. Each name's similarity is 1 when
    the whole-name token agrees, else its best Dice over the comparable copies (NULL when no
    copy is comparable). The top level can carry a term-frequency adjustment on the whole-name
    token, so a common full name counts for less than a rare one.
    """

    def __init__(self, given: Sequence[ScopedCopy], family: Sequence[ScopedCopy], *, full_name_column: str | None,
                 similar: float = 0.6, weak: float = 0.4, term_frequencies: bool = True) -> None:
        self.copies = [list(given), list(family)]
        self.full_name_column = full_name_column
        self.similar, self.weak = similar, weak
        self.tf_column = full_name_column if term_frequencies else None
        super().__init__({f"copy_{i}": f"{c.prefix}__pop" for i, c in enumerate([*given, *family])})

    def similarity_sql(self, which: int, dialect: SplinkDialect) -> str:
        best = _best_dice_sql(self.copies[which], dialect)
        if not self.full_name_column:
            return best
        token = _col(self.full_name_column, dialect)
        return f"(CASE WHEN {token.name_l} = {token.name_r} THEN 1.0 ELSE {best} END)"

    def create_comparison_levels(self) -> list[ComparisonLevelCreator]:
        s, w, one = self.similar, self.weak, 0.999
        return [
            _NameLevel("names not comparable", "{G} < 0 AND {F} < 0", self, null=True),
            _NameLevel("both names identical", f"{{G}} >= {one} AND {{F}} >= {one}", self, exact=True),
            _NameLevel(f"one identical, other Dice >= {s:g}",
                       f"({{G}} >= {one} AND {{F}} >= {s}) OR ({{F}} >= {one} AND {{G}} >= {s})", self),
            _NameLevel(f"both Dice >= {s:g}", f"{{G}} >= {s} AND {{F}} >= {s}", self),
            _NameLevel("one identical, other missing", f"({{G}} >= {one} AND {{F}} < 0) OR ({{F}} >= {one} AND {{G}} < 0)",
                       self),
            _NameLevel("one identical, other different", f"{{G}} >= {one} OR {{F}} >= {one}", self),
            _NameLevel(f"one Dice >= {s:g}, or both >= {w:g}",
                       f"{{G}} >= {s} OR {{F}} >= {s} OR ({{G}} >= {w} AND {{F}} >= {w})", self),
            _NameLevel("one missing, other different", "{G} < 0 OR {F} < 0", self),
            ElseLevel(),
        ]

    def create_description(self) -> str:
        return "given and family name together, best Dice over comparable copies"

    def create_output_column_name(self) -> str:
        return "names"
