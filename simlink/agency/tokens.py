"""Tokenisers: a normalised value becomes a set of tokens, vectorised over distinct values.

A token is identified by a small integer *tag* (which tokeniser made it) and an integer
*code*; :func:`token_message` turns the pair into the bytes that get the keyed hash. Codes
are computed with numpy on whole arrays of values (q-grams from code points), so the only
Python-level loop is over distinct tokens, of which a field has a few hundred.
"""

from __future__ import annotations

from dataclasses import dataclass

import jellyfish
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simlink.schema import TokenSpec

MAX_CHARS = 64  # longer values are truncated: bounds memory, and no real name needs more
_BOUNDARY = ord("_")
_SHIFT = 21  # bits per Unicode code point

TAG_QGRAM, TAG_POSITIONAL, TAG_WHOLE, TAG_PHONETIC = 1, 2, 3, 4
TAG_YEAR, TAG_MONTH, TAG_DAY, TAG_DAY_MONTH, TAG_DECADE = 10, 11, 12, 13, 14


@dataclass(frozen=True)
class Tokens:
    """Flat token list for a batch of values: row i of ``value_index`` owns token i."""

    value_index: np.ndarray  # int64, index into the batch of distinct values
    tag: np.ndarray  # int64
    code: np.ndarray  # int64 (for string tokens: index into ``strings``)
    strings: tuple[str, ...] = ()


def token_message(tag: int, code: int | str) -> bytes:
    """The bytes that are hashed for a token; string tokens (whole values, phonetic codes) carry their text."""
    if isinstance(code, str):
        return bytes([tag]) + code.encode("utf-8")
    return bytes([tag]) + int(code).to_bytes(8, "big", signed=True)


def _codepoints(values: list[str], width: int) -> np.ndarray:
    """(n, width) uint32 matrix of code points, zero-padded on the right."""
    if not values:
        return np.zeros((0, width), dtype=np.uint32)
    arr = np.array(values, dtype=f"<U{width}")
    return arr.view(np.uint32).reshape(len(values), width).astype(np.int64)


def _ascii_matrix(values, frame: bool = False, spaces_to_boundary: bool = False) -> np.ndarray | None:
    """(n, width) int64 character matrix of an all-ASCII Arrow string array, else ``None``.

    Same layout as :func:`_codepoints` of the values cut to MAX_CHARS (optionally framed by a
    boundary mark each side, spaces turned into boundary marks), built from the Arrow
    buffers without making a Python string per value.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array) or not pa.types.is_string(values.type) or values.null_count:
        return None
    n = len(values)
    if n and not pc.all(pc.string_is_ascii(values)).as_py():
        return None
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * values.offset)
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None and buffer.size else np.zeros(1, np.uint8)
    lengths = np.minimum(np.diff(offsets), MAX_CHARS).astype(np.int64)
    lead = 1 if frame else 0
    width = max(int(lengths.max(initial=0)) + 2 * lead, 1)
    if n and lengths[0] == width - 2 * lead and (lengths == lengths[0]).all() and offsets[-1] - offsets[0] == n * lengths[0]:
        # Equal lengths (NHS numbers, most postcodes): the characters are one (n, length) block.
        matrix = np.zeros((n, width), dtype=np.int64)
        matrix[:, lead:width - lead] = data[offsets[0]:offsets[-1]].reshape(n, -1)
    else:
        position = np.arange(width, dtype=np.int64)[None, :] - lead
        inside = (position >= 0) & (position < lengths[:, None])
        source = np.where(inside, offsets[:-1, None].astype(np.int64) + position, 0)
        matrix = np.where(inside, data[np.minimum(source, len(data) - 1)], 0).astype(np.int64)
    if spaces_to_boundary:
        matrix[matrix == ord(" ")] = _BOUNDARY
    if frame:
        matrix[:, 0] = _BOUNDARY
        matrix[np.arange(n), lengths + 1] = _BOUNDARY
    return matrix


def _as_list(values) -> list[str]:
    return values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else values


def qgram_tokens(values: list[str] | pa.Array, q: int, padding: bool) -> Tokens:
    """Q-grams of each word; with padding each word is framed by a boundary mark."""
    cps = _ascii_matrix(values, frame=padding, spaces_to_boundary=True)
    if cps is None:
        values = _as_list(values)
        if padding:
            prepared = ["_" + v[:MAX_CHARS].replace(" ", "_") + "_" for v in values]
        else:
            prepared = [v[:MAX_CHARS].replace(" ", "_") for v in values]
        cps = _codepoints(prepared, max(max((len(v) for v in prepared), default=1), q))
    if cps.shape[1] < q:
        cps = np.pad(cps, ((0, 0), (0, q - cps.shape[1])))
    width = cps.shape[1]
    n_grams = width - q + 1
    code = np.zeros((len(cps), n_grams), dtype=np.int64)
    valid = np.ones((len(cps), n_grams), dtype=bool)
    for offset in range(q):
        part = cps[:, offset : offset + n_grams]
        code = (code << _SHIFT) | part
        valid &= part != 0
    # A q-gram made only of boundary marks ("__") carries nothing; without padding a
    # q-gram that spans two words is dropped as well.
    all_boundary = np.ones_like(valid)
    any_boundary = np.zeros_like(valid)
    for offset in range(q):
        is_b = cps[:, offset : offset + n_grams] == _BOUNDARY
        all_boundary &= is_b
        any_boundary |= is_b
    valid &= ~all_boundary if padding else ~any_boundary
    per_value = np.count_nonzero(valid, axis=1)
    owner = np.repeat(np.arange(len(cps), dtype=np.int64), per_value)  # row-major: non-decreasing
    return Tokens(owner, np.full(len(owner), TAG_QGRAM, np.int64), code[valid])


def positional_tokens(values: list[str] | pa.Array) -> Tokens:
    """Character-at-position tokens: a one-digit typo changes one token of ten."""
    cps = _ascii_matrix(values)
    if cps is None:
        values = _as_list(values)
        cps = _codepoints([v[:MAX_CHARS] for v in values], max((len(v) for v in values), default=1))
    chars = cps.reshape(-1)
    flat = np.flatnonzero(chars)  # row-major, so value_index is non-decreasing
    width = max(cps.shape[1], 1)
    code = ((flat % width) << _SHIFT) | chars[flat]
    return Tokens(flat // width, np.full(len(flat), TAG_POSITIONAL, np.int64), code)


def whole_tokens(values: list[str] | pa.Array) -> Tokens:
    """The whole value as one token (for codes such as sex)."""
    values = _as_list(values)
    n = len(values)
    return Tokens(np.arange(n, dtype=np.int64), np.full(n, TAG_WHOLE, np.int64),
                  np.arange(n, dtype=np.int64), tuple(values))


def date_part_tokens(values: list[str]) -> Tokens:
    """Year, month, day, unordered day/month pair and decade of an ISO date.

    Equal dates share all five tokens; a day/month swap keeps year, pair and decade;
    a wrong last digit of the year keeps month, day, pair and usually the decade.
    """
    n = len(values)
    if n == 0:
        return Tokens(*(np.zeros(0, np.int64) for _ in range(3)))
    chars = _ascii_matrix(values)
    if chars is None or chars.shape[1] < 10:
        chars = _codepoints(_as_list(values), 10)
    digits = chars[:, :10] - ord("0")  # "YYYY-MM-DD" as digit matrix
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 5] * 10 + digits[:, 6]
    day = digits[:, 8] * 10 + digits[:, 9]
    pair = np.minimum(day, month) * 100 + np.maximum(day, month)
    tags = np.array([TAG_YEAR, TAG_MONTH, TAG_DAY, TAG_DAY_MONTH, TAG_DECADE], dtype=np.int64)
    codes = np.stack([year, month, day, pair, year // 10], axis=1)
    return Tokens(np.repeat(np.arange(n, dtype=np.int64), 5), np.tile(tags, n), codes.reshape(-1))


def phonetic_tokens(values: list[str] | pa.Array, algorithm: str) -> Tokens:
    """One phonetic code per word (jellyfish), robust to spelling variants of a name."""
    encode = {"soundex": jellyfish.soundex, "metaphone": jellyfish.metaphone, "nysiis": jellyfish.nysiis}[algorithm]
    rows: list[int] = []
    strings: list[str] = []
    for i, value in enumerate(_as_list(values)):
        for word in value.split(" "):
            if word.isascii() and word.isalpha():
                strings.append(encode(word))
                rows.append(i)
    n = len(strings)
    return Tokens(np.array(rows, dtype=np.int64), np.full(n, TAG_PHONETIC, np.int64),
                  np.arange(n, dtype=np.int64), tuple(strings))


def tokenise(values: list[str] | pa.Array, spec: TokenSpec) -> list[Tokens]:
    """All token groups for a list of distinct normalised values under one field's spec."""
    if spec.kind == "qgram":
        groups = [qgram_tokens(values, spec.q, spec.padding)]
    elif spec.kind == "positional":
        groups = [positional_tokens(values)]
    elif spec.kind == "date_parts":
        groups = [date_part_tokens(values)]
    else:
        groups = [whole_tokens(values)]
    if spec.phonetic:
        groups.append(phonetic_tokens(values, spec.phonetic))
    return groups
