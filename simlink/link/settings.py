"""Splink settings built from the linkage schema: blocking, comparisons, training rules.

Everything the model needs follows from the schema the agencies encoded with, so two runs
on the same schema build the same settings:

* prediction blocking: one equality rule per keyed blocking token ``blk__<name>``, OR-ed
  (Splink unions the rules and scores each pair once); a null token never matches;
* one :class:`DiceAtThresholds` comparison per field, thresholds chosen by the field's
  tokenisation (see docs/linkage.md); term-frequency adjustment on identical-filter levels
  of the name fields, using the filter hash as the term;
* EM blocking passes and deterministic rules for the prior, on filter hashes, so Splink can
  tell which comparison a training pass cannot estimate.
"""

from __future__ import annotations

from typing import Any

from splink import block_on

from simlink.agency.encode import block_column
from simlink.link.comparisons import DiceAtThresholds, NamesComparison, ScopedCopy, ScopedDice
from simlink.link.load import hash_column, scope_column
from simlink.schema import IDENTIFIER_NORMALISERS, IDENTITY_DERIVATIONS, FieldSpec, Schema

UNIQUE_ID = "enc_id"
# Dice thresholds per tokenisation; measured on synthetic data (docs/linkage.md).
THRESHOLDS = {
    "qgram": (0.9, 0.75),
    "date_parts": (0.75,),
    "positional": (0.8,),
    "whole": (),
}
TF_NORMALISERS = {"person_name"}
# Minhash copies: Dice is the share of agreeing segments, about J + (1 - J) / w for token sets
# of Jaccard similarity J (w = segment width); unrelated names sit near 1/w = 0.125.
MINHASH_THRESHOLDS = (0.85, 0.6, 0.4)


TYPICAL_TOKENS = 8  # a name's padded bigrams plus its phonetic token


def balanced_threshold(dice: float, f: FieldSpec) -> float:
    """The Dice on a balanced filter that corresponds to ``dice`` on the plain filter.

    Balancing stores [f, not f] (permuted), so every filter has the same weight and Dice becomes 1 - Hamming/bits. Two plain filters of typical weight p with Dice d
    differ in 2p(1 - d) bits, hence d maps to 1 - 2p(1 - d)/bits. Without this the plain
    thresholds (0.9, 0.75) would put unrelated names (balanced Dice ~0.87) into a
    "similar" level.
    """
    import math

    typical_weight = f.bits * (1 - math.exp(-TYPICAL_TOKENS * f.hashes / f.bits))
    return round(1 - 2 * typical_weight * (1 - dice) / f.bits, 4)


def is_scoped(f: FieldSpec) -> bool:
    """Format-2 copies (salted by scopes, or minhash) rather than one format-1 style filter."""
    return bool(f.salt_by) or f.encoding == "minhash"


def equality_column(key_name: str) -> str:
    """Working copy of a whole-value token, used where the token *proves* values equal.

    Splink leaves a comparison out of an EM pass when the pass blocks on a column the
    comparison reads. Scope conditions read ``sc__<key>``; equality proofs and the EM passes
    read this copy, so an EM pass on the date of birth skips the date-of-birth comparison
    but still trains the names compared inside that scope.
    """
    return f"eq__{key_name}"


def whole_value_keys(schema: Schema) -> list:
    return [k for k in schema.blocking if all(p.split(":")[1] in IDENTITY_DERIVATIONS for p in k.parts)]


def value_token(schema: Schema, field_name: str) -> str | None:
    """Equality column of a key that is exactly this field's whole value (e.g. ``eq__dob``)."""
    for key in whole_value_keys(schema):
        if [p.split(":")[0] for p in key.parts] == [field_name]:
            return equality_column(key.name)
    return None


def exact_tokens(schema: Schema, field_name: str) -> list[str]:
    """Equality columns of keys made only of whole values, one of them this field's: equal
    tokens prove the field's values equal (an unordered key: equal or swapped)."""
    return [equality_column(k.name) for k in whole_value_keys(schema)
            if field_name in [p.split(":")[0] for p in k.parts]]


def field_comparison(f: FieldSpec, *, term_frequencies: bool = True, schema: Schema | None = None):
    if is_scoped(f):
        copies = [ScopedCopy(c.prefix, c.words, scope_column(c.scope) if c.scope else None) for c in f.copies]
        thresholds = MINHASH_THRESHOLDS if f.encoding == "minhash" else THRESHOLDS.get(f.tokens.kind, (0.8,))
        return ScopedDice(f.name, copies, thresholds,
                          exact_tokens=exact_tokens(schema, f.name) if schema is not None else (),
                          value_token=value_token(schema, f.name) if schema is not None else None)
    thresholds = THRESHOLDS.get(f.tokens.kind, (0.8,))
    if f.hardening.balance and not f.hardening.xor_fold:
        thresholds = tuple(balanced_threshold(t, f) for t in thresholds)
    return DiceAtThresholds(
        f.name, f.words, thresholds, hash_column=hash_column(f.name),
        term_frequency_adjustments=term_frequencies and f.normaliser in TF_NORMALISERS)


def _present(fields: set[str], *names: str) -> bool:
    return all(n in fields for n in names)


def _token_rules(schema: Schema, fields: list[str]) -> tuple[list[str], list[str]]:
    """Format 2: the whole-value tokens of the main identifiers (names, date of birth, postcode)."""
    names = set(fields)
    main = []
    for key in whole_value_keys(schema):
        parts = [p.split(":") for p in key.parts]
        if all(f in names for f, _ in parts) and \
                {f for f, _ in parts} & {"given_name", "family_name", "date_of_birth", "postcode"}:
            main.append(equality_column(key.name))
    return main, [equality_column(k.name) for k in whole_value_keys(schema) if len(k.parts) == 1
                  and k.parts[0].split(":")[0] in names
                  and schema.field(k.parts[0].split(":")[0]).normaliser in IDENTIFIER_NORMALISERS]


def prior_rules(schema: Schema, fields: list[str]) -> list[str]:
    """Near-certain deterministic rules: three of the four main identifiers identical (format
    2: two whole-value tokens of the main identifiers equal)."""
    if any(is_scoped(f) for f in schema.fields):
        main, nhs = _token_rules(schema, fields)
        rules = [f"l.{a} = r.{a} AND l.{b} = r.{b}" for i, a in enumerate(main) for b in main[i + 1:]]
        return rules + [f"l.{t} = r.{t}" for t in nhs]
    names = set(fields)
    core = [n for n in ("given_name", "family_name", "date_of_birth", "postcode") if n in names]
    if len(core) < 3:
        core = [f.name for f in schema.fields if f.name in names][:3]
    rules = []
    for skip in core if len(core) > 3 else [None]:
        chosen = [n for n in core if n != skip]
        rules.append(" AND ".join(f"l.{hash_column(n)} = r.{hash_column(n)}" for n in chosen))
    if "nhs_number" in names:
        rules.append(f"l.{hash_column('nhs_number')} = r.{hash_column('nhs_number')}")
    return rules


def em_blocking_rules(schema: Schema, fields: list[str]) -> list[Any]:
    """Training passes: each blocks on some fields and so estimates the others' m values."""
    names = set(fields)
    if any(is_scoped(f) for f in schema.fields):
        # One pass on the date of birth (trains names, postcode, sex), one on the whole name
        # (trains date of birth, postcode, sex).
        main, _ = _token_rules(schema, fields)
        chosen = []
        for wanted in ("date_of_birth", "given_name"):
            for key in whole_value_keys(schema):
                if equality_column(key.name) in main and any(p.startswith(wanted + ":") for p in key.parts):
                    chosen.append(block_on(equality_column(key.name)))
                    break
        return chosen or [block_on(block_column(schema.blocking[0].name))]
    rules = []
    if _present(names, "date_of_birth"):
        rules.append(block_on(hash_column("date_of_birth")))
    if _present(names, "given_name", "family_name"):
        rules.append(block_on(hash_column("given_name"), hash_column("family_name")))
    if not rules:
        rules.append(block_on(*[hash_column(n) for n in fields[:2]]))
    return rules


def name_pair(schema: Schema, fields: list[str] | None = None) -> tuple[FieldSpec, FieldSpec] | None:
    """The two scoped person-name fields compared together, when the schema has them."""
    names = [f for f in schema.fields if f.normaliser == "person_name" and is_scoped(f)
             and (fields is None or f.name in fields)]
    return (names[0], names[1]) if len(names) == 2 else None


def is_conditional(creator) -> bool:
    """Comparisons whose levels exist only inside shared scopes: their u is estimated there."""
    return isinstance(creator, NamesComparison) or (isinstance(creator, ScopedDice) and not creator.value_token)


def comparisons(schema: Schema, fields: list[str] | None = None, *, term_frequencies: bool = True) -> list:
    """Splink comparison creators for the fields used, in schema order."""
    used = [f for f in schema.fields if fields is None or f.name in fields]
    pair = name_pair(schema, fields)
    out = []
    for f in used:
        if pair and f is pair[1]:
            continue
        if pair and f is pair[0]:
            full = [k for k in whole_value_keys(schema)
                    if sorted(p.split(":")[0] for p in k.parts) == sorted([pair[0].name, pair[1].name])]
            copies = [[ScopedCopy(c.prefix, c.words, scope_column(c.scope) if c.scope else None) for c in g.copies]
                      for g in pair]
            out.append(NamesComparison(copies[0], copies[1],
                                       full_name_column=equality_column(full[0].name) if full else None,
                                       term_frequencies=term_frequencies))
            continue
        out.append(field_comparison(f, term_frequencies=term_frequencies, schema=schema))
    return out


def prediction_rules(schema: Schema) -> list[Any]:
    """One equality rule per keyed token (capped), OR-ed, then the cap's fallback tokens
    (name bands and tiles of oversized blocks, simlink/link/block_caps.py), exploded."""
    from simlink.link.block_caps import FALLBACK_COLUMN

    return [block_on(block_column(b.name)) for b in schema.blocking] + [
        block_on(FALLBACK_COLUMN, arrays_to_explode=[FALLBACK_COLUMN])]


def build_settings(schema: Schema, fields: list[str] | None = None, *, term_frequencies: bool = True):
    """Splink SettingsCreator (dialect-free until a linker is built) for the fields used.

    ``fields``: fields with at least one value in the inputs (a comparison on a field that
    is always missing could not be trained); default all.
    """
    from splink import SettingsCreator

    used = [f for f in schema.fields if fields is None or f.name in fields]

    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        blocking_rules_to_generate_predictions=prediction_rules(schema),
        comparisons=comparisons(schema, fields, term_frequencies=term_frequencies),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )
    return creator
