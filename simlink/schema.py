"""The linkage schema: one versioned document every agency encodes from.

A schema says, per identifier field, which input column holds it, how to normalise it, how
to cut it into tokens and how to hash those tokens into a Bloom filter; and which keyed
blocking tokens to emit. Every party must use the same schema: its *fingerprint* (SHA-256
of the canonical form of everything that affects the encoding) is written into each encoded
file and the linkage step refuses files whose fingerprints differ.

Input column names are *not* part of the fingerprint: agencies may map different local
column names onto the same fields without changing the encoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields as dc_fields
from importlib import resources
from pathlib import Path
from typing import Any

from simlink.errors import SchemaError
from simlink.agency.normalise import NORMALISERS

SCHEMA_VERSION = 2
# Bumped whenever the bytes an encoder writes for the same schema and key would change.
ENCODING_FORMAT_VERSION = 2
ENCODINGS = ("bloom", "minhash")

TOKEN_KINDS = ("qgram", "date_parts", "positional", "whole")
PHONETIC = ("", "soundex", "metaphone", "nysiis")
HASHING = ("random", "double")

# Whole-value derivations are hashed from the field's keyed filter words (no extra HMAC).
IDENTITY_DERIVATIONS = frozenset({"value", "ymd", "full"})
# Derivations usable in blocking keys, by normaliser.
DERIVATIONS: dict[str, tuple[str, ...]] = {
    "person_name": ("value", "first_word", "initial", "soundex", "metaphone", "nysiis"),
    "date": ("ymd", "year", "month_day", "day_month_unordered", "year_month"),
    "uk_postcode": ("full", "sector", "district", "area"),
    "sex": ("value",),
    "nhs_number": ("value",),
    "text": ("value",),
    "identifier": ("value",),
}
# Normalisers of numbers that identify a person by themselves: an extra field of this kind
# gets its own blocking key, and equal values are a near-certain match (prior rules).
IDENTIFIER_NORMALISERS = frozenset({"nhs_number", "identifier"})


@dataclass(frozen=True)
class TokenSpec:
    """How a normalised value becomes a set of tokens."""

    kind: str = "qgram"
    q: int = 2
    padding: bool = True
    phonetic: str = ""


@dataclass(frozen=True)
class Hardening:
    """Defences against attacks on the filters (see docs/threat-model.md).

    ``permute``: apply a keyed permutation to the bit positions of this field.
    ``blip_epsilon``: 0 = off; otherwise flip each bit with probability 1/(1+e^epsilon),
    seeded by a keyed hash of the value so equal values still give equal filters.
    ``xor_fold``: fold the filter in half with XOR (halves its length).
    ``balance``: append the complement of the filter so every filter has the same weight.
    ``salt_derivation``: blocking derivation ("field:derivation") whose value salts the
    tokens of this field, so that filters only compare within records sharing it.

    Costs and what each option stops were measured by benchmarks/privacy_bench.py: permute
    costs nothing and stops nothing on its own (positions are keyed already); balance
    doubles the stored length; xor_fold and BLIP add similarity noise; salting loses the
    name similarity of true matches whose salt value differs (docs/threat-model.md).
    """

    permute: bool = False
    blip_epsilon: float = 0.0
    xor_fold: bool = False
    balance: bool = False
    salt_derivation: str = ""


@dataclass(frozen=True)
class FieldSpec:
    """One identifier field: its input column, normaliser, tokens, filter and hardening."""

    name: str
    column: str
    normaliser: str
    bits: int
    hashes: int
    hashing: str = "random"
    optional_column: bool = False
    tokens: TokenSpec = field(default_factory=TokenSpec)
    hardening: Hardening = field(default_factory=Hardening)
    encoding: str = "bloom"
    segments: int = 0
    salt_by: tuple[str, ...] = ()

    @property
    def copies(self) -> tuple["FilterCopy", ...]:
        """The filters stored for this field: one per salting scope, or one unsalted."""
        if not self.salt_by:
            return (FilterCopy(self.name, "", self.name, self.words),)
        return tuple(FilterCopy(self.name, s, f"{self.name}__by_{s}", self.words) for s in self.salt_by)

    @property
    def stored_bits(self) -> int:
        """Width of the stored filter after hardening that changes the length."""
        bits = self.bits // 2 if self.hardening.xor_fold else self.bits
        return bits * 2 if self.hardening.balance else bits

    @property
    def words(self) -> int:
        return self.stored_bits // 64


@dataclass(frozen=True)
class FilterCopy:
    """One stored filter of a field. ``scope`` names the blocking key whose value salts it
    ("" = unsalted): two records' copies are comparable only when their tokens of that key
    are equal, and copies under different scope values are unrelated bit patterns."""

    field: str
    scope: str
    prefix: str
    words: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.prefix, "field": self.field, "scope": self.scope or None, "words": self.words}


@dataclass(frozen=True)
class BlockingKey:
    """A keyed blocking token: HMAC of the joined derivations; null if any part is missing.

    ``unordered`` keys hash each part under its kind and derivation alone (not its field) and
    ignore the order of parts of the same kind, so a record with given and family name
    swapped gets the same token; parts of other kinds keep their place.
    """

    name: str
    parts: tuple[str, ...]
    unordered: bool = False

    def to_dict(self) -> dict[str, Any]:
        # ``unordered`` only when set, so the fingerprints of existing schemas do not move.
        doc: dict[str, Any] = {"name": self.name, "parts": list(self.parts)}
        if self.unordered:
            doc["unordered"] = True
        return doc


@dataclass(frozen=True)
class RecordColumns:
    """Input columns that describe the event rather than the person."""

    record_id: str = "record_id"
    contact_date: str = "contact_date"
    service: str = ""


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[FieldSpec, ...]
    blocking: tuple[BlockingKey, ...]
    record: RecordColumns = field(default_factory=RecordColumns)
    version: int = SCHEMA_VERSION

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def copies(self) -> tuple[FilterCopy, ...]:
        return tuple(c for f in self.fields for c in f.copies)

    def blocking_key(self, name: str) -> BlockingKey:
        for b in self.blocking:
            if b.name == name:
                return b
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The full document, defaults filled in (what ``schema show`` prints)."""
        doc = asdict(self)
        doc["fields"] = list(doc["fields"])
        for f in doc["fields"]:
            f["salt_by"] = list(f["salt_by"])
        doc["blocking"] = [b.to_dict() for b in self.blocking]
        return doc

    def encoding_dict(self) -> dict[str, Any]:
        """Everything that changes the encoded bytes — and nothing local to one agency."""
        doc = self.to_dict()
        doc.pop("record")
        doc.pop("name")
        for f in doc["fields"]:
            f.pop("column")
            f.pop("optional_column")
        doc["encoding_format_version"] = ENCODING_FORMAT_VERSION
        return doc

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.encoding_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- loading


def _check_keys(table: dict[str, Any], allowed: set[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}", path=source)


def _build(cls: type, table: dict[str, Any], where: str, source: str) -> Any:
    allowed = {f.name for f in dc_fields(cls)}
    _check_keys(table, allowed, where, source)
    try:
        return cls(**table)
    except TypeError as exc:  # a required key is missing
        missing = sorted(a for a in allowed if a not in table)
        raise SchemaError(f"{where}: missing key(s) among {', '.join(missing)}", path=source) from exc


def _expect(condition: bool, message: str, source: str) -> None:
    if not condition:
        raise SchemaError(message, path=source)


def _validate_field(f: FieldSpec, where: str, source: str) -> None:
    _expect(isinstance(f.name, str) and f.name.isidentifier() and f.name.islower(),
            f"{where}: name must be a lower-case identifier such as 'given_name'", source)
    _expect(isinstance(f.column, str) and f.column != "", f"{where}: column must be a non-empty string", source)
    _expect(f.normaliser in NORMALISERS,
            f"{where}: normaliser must be one of {', '.join(NORMALISERS)}", source)
    _expect(isinstance(f.bits, int) and 64 <= f.bits <= 4096 and f.bits % 64 == 0,
            f"{where}: bits must be a multiple of 64 between 64 and 4096 (filters are stored as 64-bit words)", source)
    _expect(isinstance(f.hashes, int) and 1 <= f.hashes <= 64, f"{where}: hashes must be an integer from 1 to 64", source)
    _expect(f.hashing in HASHING, f"{where}: hashing must be one of {', '.join(HASHING)}", source)
    t = f.tokens
    _expect(t.kind in TOKEN_KINDS, f"{where}.tokens: kind must be one of {', '.join(TOKEN_KINDS)}", source)
    _expect(isinstance(t.q, int) and 1 <= t.q <= 3, f"{where}.tokens: q must be 1, 2 or 3", source)
    _expect(t.phonetic in PHONETIC, f"{where}.tokens: phonetic must be one of {', '.join(repr(p) for p in PHONETIC)}", source)
    _expect(t.kind != "date_parts" or f.normaliser == "date",
            f"{where}.tokens: kind 'date_parts' needs normaliser 'date'", source)
    _expect(t.phonetic == "" or f.normaliser == "person_name",
            f"{where}.tokens: phonetic tokens need normaliser 'person_name'", source)
    _expect(f.encoding in ENCODINGS, f"{where}: encoding must be one of {', '.join(ENCODINGS)}", source)
    if f.encoding == "minhash":
        width = f.bits // f.segments if isinstance(f.segments, int) and f.segments > 0 else 0
        _expect(width in (2, 4, 8, 16, 32, 64) and f.bits % f.segments == 0 and f.segments <= 1024,
                f"{where}: a minhash field needs segments dividing bits into 2-64 bit segments "
                "(e.g. bits = 512, segments = 64)", source)
        _expect(f.hardening == Hardening(), f"{where}: hardening options apply to bloom encodings only", source)
    else:
        _expect(f.segments == 0, f"{where}: segments applies to encoding 'minhash' only", source)
    _expect(not (f.salt_by and f.hardening != Hardening()),
            f"{where}: salt_by and the hardening options cannot be combined (the scope salt replaces them)", source)
    _expect(len(set(f.salt_by)) == len(f.salt_by) and all(isinstance(x, str) and x for x in f.salt_by),
            f"{where}: salt_by must list distinct blocking key names", source)
    h = f.hardening
    _expect(isinstance(h.blip_epsilon, (int, float)) and h.blip_epsilon >= 0,
            f"{where}.hardening: blip_epsilon must be >= 0 (0 = off)", source)
    _expect(not h.xor_fold or f.bits >= 128, f"{where}.hardening: xor_fold needs bits >= 128", source)


def _parse_part(part: str, fields_by_name: dict[str, FieldSpec], where: str, source: str) -> tuple[FieldSpec, str]:
    field_name, _, derivation = part.partition(":")
    _expect(field_name in fields_by_name, f"{where}: '{part}' names no field of this schema", source)
    f = fields_by_name[field_name]
    allowed = DERIVATIONS[f.normaliser]
    _expect(derivation in allowed, f"{where}: '{part}': derivation must be one of {', '.join(allowed)}", source)
    return f, derivation


def schema_from_dict(doc: dict[str, Any], source: str = "<schema>") -> Schema:
    """Build and validate a schema from a parsed document; errors name the offending key."""
    _check_keys(doc, {"version", "name", "record", "fields", "blocking"}, "schema", source)
    if doc.get("version") == 1:
        doc = upgrade_v1(doc)
    _expect(doc.get("version") == SCHEMA_VERSION, f"schema: version must be {SCHEMA_VERSION}", source)
    record = _build(RecordColumns, dict(doc.get("record", {})), "record", source)
    raw_fields = doc.get("fields") or []
    _expect(isinstance(raw_fields, list) and len(raw_fields) > 0, "schema: at least one [[fields]] entry is needed", source)
    parsed: list[FieldSpec] = []
    for i, raw in enumerate(raw_fields):
        where = f"fields[{i}]"
        raw = dict(raw)
        tokens = _build(TokenSpec, dict(raw.pop("tokens", {})), f"{where}.tokens", source)
        hardening = _build(Hardening, dict(raw.pop("hardening", {})), f"{where}.hardening", source)
        if "salt_by" in raw:
            _expect(isinstance(raw["salt_by"], list), f"{where}: salt_by must be a list of blocking key names", source)
            raw["salt_by"] = tuple(raw["salt_by"])
        spec = _build(FieldSpec, {**raw, "tokens": tokens, "hardening": hardening}, where, source)
        _validate_field(spec, f"{where} ({spec.name})", source)
        parsed.append(spec)
    names = [f.name for f in parsed]
    _expect(len(set(names)) == len(names), "schema: field names must be unique", source)
    by_name = {f.name: f for f in parsed}
    for f in parsed:
        if f.hardening.salt_derivation:
            _parse_part(f.hardening.salt_derivation, by_name, f"fields ({f.name}).hardening.salt_derivation", source)
    blocking: list[BlockingKey] = []
    for i, raw in enumerate(doc.get("blocking") or []):
        where = f"blocking[{i}]"
        _check_keys(raw, {"name", "parts", "unordered"}, where, source)
        name, parts, unordered = raw.get("name"), raw.get("parts"), raw.get("unordered", False)
        _expect(isinstance(name, str) and name.isidentifier() and name.islower(),
                f"{where}: name must be a lower-case identifier", source)
        _expect(isinstance(parts, list) and len(parts) > 0, f"{where}: parts must be a non-empty list", source)
        _expect(isinstance(unordered, bool), f"{where} ({name}): unordered must be true or false", source)
        kinds = [(spec.normaliser, derivation)
                 for spec, derivation in (_parse_part(str(part), by_name, f"{where} ({name})", source) for part in parts)]
        if unordered:
            swappable = {kind for kind in kinds if kinds.count(kind) > 1}
            _expect(bool(swappable),
                    f"{where} ({name}): an unordered key needs two or more parts of the same kind and derivation", source)
        blocking.append(BlockingKey(name, tuple(str(p) for p in parts), unordered))
    block_names = [b.name for b in blocking]
    _expect(len(set(block_names)) == len(block_names), "schema: blocking key names must be unique", source)
    for f in parsed:
        for scope in f.salt_by:
            _expect(scope in block_names, f"fields ({f.name}).salt_by: '{scope}' is not a blocking key of this schema", source)
            key = next(b for b in blocking if b.name == scope)
            _expect(all(not p.startswith(f.name + ":") for p in key.parts),
                    f"fields ({f.name}).salt_by: '{scope}' is made from {f.name} itself", source)
    return Schema(
        name=str(doc.get("name", "unnamed")),
        fields=tuple(parsed),
        blocking=tuple(blocking),
        record=record,
        version=SCHEMA_VERSION,
    )


def upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 document as version 2 (pure): same fields and keys, unsalted bloom copies.

    Its fingerprint differs from the version-1 one (the encoding format is part of it), so
    files encoded under version 1 are never mistaken for version-2 files.
    """
    upgraded = dict(doc)
    upgraded["version"] = 2
    return upgraded


def with_extra_fields(schema: Schema, extras: list[str] | tuple[str, ...]) -> Schema:
    """The schema plus identifier columns named on the command line as ``column=normaliser``.

    An extra field takes the filter, hardening and scope settings of the schema's first field with
    the same normaliser; a ``text`` field (the default schema has none) those of its first
    person-name field, without phonetic tokens. Its input column has the field's name and is
    required. The fingerprint changes, so every agency must name the same extras.
    """
    if not extras:
        return schema
    added = list(schema.fields)
    for extra in extras:
        name, _, normaliser = str(extra).partition("=")
        name, normaliser = name.strip(), normaliser.strip() or "text"
        where = f"--extra-field {name or '?'}"
        _expect(name.isidentifier() and name.islower(),
                f"{where}: give the column as a lower-case name, e.g. address_line=text", "command line")
        _expect(normaliser in NORMALISERS, f"{where}: normaliser must be one of {', '.join(NORMALISERS)}",
                "command line")
        _expect(all(f.name != name for f in added), f"{where}: the schema already has this field", "command line")
        template = next((f for f in added if f.normaliser == normaliser), None)
        if template is None and normaliser == "text":
            template = next((f for f in added if f.normaliser == "person_name"), None)
        if template is None and normaliser == "identifier":
            template = next((f for f in added if f.normaliser == "nhs_number"), None) or FieldSpec(
                name, name, normaliser, bits=256, hashes=4, tokens=TokenSpec("positional"))
        if template is None:
            template = FieldSpec(name, name, normaliser, bits=512, hashes=5)
        tokens = template.tokens
        if normaliser != "person_name" and tokens.phonetic:
            tokens = TokenSpec(tokens.kind, tokens.q, tokens.padding, "")
        salt_by = template.salt_by
        if salt_by:
            # Every scope the schema already uses (date of birth, postcode, both names): an
            # address is then compared whenever one of them agrees, and no new kind of group
            # is made (each scope value still holds about one person or household).
            salt_by = tuple(dict.fromkeys(s for f in schema.fields for s in f.salt_by))
        added.append(dataclasses.replace(template, name=name, column=name, normaliser=normaliser,
                                         optional_column=False, tokens=tokens, salt_by=salt_by))
    blocking = list(schema.blocking) + [BlockingKey(f.name, (f"{f.name}:value",)) for f in added[len(schema.fields):]
                                        if f.normaliser in IDENTIFIER_NORMALISERS]
    _expect(len({b.name for b in blocking}) == len(blocking),
            "--extra-field: an identifier's blocking key has the name of an existing key", "command line")
    name = f"{schema.name}+{'+'.join(f.name for f in added[len(schema.fields):])}"
    extended = dataclasses.replace(schema, name=name, fields=tuple(added), blocking=tuple(blocking))
    return schema_from_dict(extended.to_dict(), "command line")  # validated like any schema


def load_schema(path: str | Path | None = None) -> Schema:
    """Read a TOML schema; ``None`` means the default schema shipped with simlink."""
    if path is None:
        text = resources.files("simlink.data").joinpath("default_schema.toml").read_text("utf-8")
        source = "default schema"
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except FileNotFoundError:
            raise SchemaError("schema file not found", path=source) from None
        except (OSError, UnicodeDecodeError):
            raise SchemaError("schema file cannot be read as UTF-8 text", path=source) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"not valid TOML ({exc})", path=source) from None
    return schema_from_dict(doc, source)


def schema_toml(schema: Schema) -> str:
    """The schema as a TOML file that :func:`load_schema` reads back to the same fingerprint."""
    from simlink.toml_text import dumps

    header = ("# simlink linkage schema, every default filled in (keys: docs/schema.md).\n"
              f"# fingerprint: {schema.fingerprint}\n")
    return header + dumps(schema.to_dict())


def schema_from_json(text: str, source: str) -> Schema:
    """Rebuild a schema stored in an encoded file's manifest."""
    return schema_from_dict(json.loads(text), source)
