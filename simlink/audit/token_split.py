"""Splitting two-part blocking tokens into a part the attacker can use across salt groups.

v1 combines a key's parts as ``t = mix(mix(c0 ^ h1) ^ (h2 + 1))`` with ``mix`` the public,
invertible splitmix64. Undoing the outer ``mix`` gives ``mix(c0 ^ h1) ^ (h2 + 1)``: for a
key such as (family soundex, birth year), records of one birth year share the second term,
so between two years the XOR of the values of the *same* soundex code is one constant —
the commonest XOR between the two years' commonest values. Removing it per year leaves a
class per family soundex code over the whole population, across the birth-year salt:
with the name filter's popcount it is a name class no salt group limits.

A token made by one keyed hash over all parts has no such constant: no year aligns, and the
attack returns nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simlink.audit.encoded import Corpus

_C = np.uint64(0x9E3779B97F4A7C15)
_M1_INV = np.uint64(pow(0xBF58476D1CE4E5B9, -1, 1 << 64))
_M2_INV = np.uint64(pow(0x94D049BB133111EB, -1, 1 << 64))
TOP = 300  # commonest values per year compared
MIN_SUPPORT = 3  # pairs that must agree on one XOR for a year to be aligned


def unmix(z: np.ndarray) -> np.ndarray:
    """Inverse of splitmix64 (simlink.agency.bloom._splitmix64)."""
    z = z.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(31)) ^ (z >> np.uint64(62))
        z = z * _M2_INV
        z = z ^ (z >> np.uint64(27)) ^ (z >> np.uint64(54))
        z = z * _M1_INV
        z = z ^ (z >> np.uint64(30)) ^ (z >> np.uint64(60))
        return z - _C


def split_keys(corpus: Corpus, field_name: str) -> list[str]:
    """Ordered two-part keys: (a derivation of ``field_name``, birth year)."""
    out = []
    present = set(corpus.block_names())
    for key in corpus.schema.blocking:
        parts = [p.partition(":") for p in key.parts]
        if key.name in present and not key.unordered and len(parts) == 2 and parts[0][0] == field_name \
                and parts[1][0] == "date_of_birth" and parts[1][2] == "year":
            out.append(key.name)
    return out


def split_classes(corpus: Corpus, key_name: str, year: np.ndarray) -> tuple[np.ndarray, dict]:
    """A class per record of the first part's value, aligned across years (-1 = none)."""
    token = corpus.tokens(key_name)
    has = (token != 0) & (year >= 0)
    labels = np.full(corpus.rows, -1, np.int64)
    if not has.any():
        return labels, {"years_aligned": 0}
    inner = unmix(token[has].view(np.uint64))
    years = year[has]
    frame = pd.DataFrame({"y": years, "v": inner})
    counts = frame.groupby(["y", "v"]).size().rename("n").reset_index().sort_values(["y", "n"], ascending=[True, False])
    top = {int(y): g["v"].to_numpy()[:TOP] for y, g in counts.groupby("y")}
    reference_year = int(frame["y"].value_counts().idxmax())
    offset: dict[int, np.uint64] = {reference_year: np.uint64(0)}
    pool = pd.Series(counts.loc[counts.y == reference_year, "n"].to_numpy(),
                     index=counts.loc[counts.y == reference_year, "v"].to_numpy())
    progress = True
    while progress:  # align each year against every year aligned so far, until none is left
        progress = False
        base = pool.sort_values(ascending=False).index.to_numpy(dtype=np.uint64)[:TOP]
        for y, values in top.items():
            if y in offset:
                continue
            xors = (base[:, None] ^ values[None, :]).ravel()
            found, n = np.unique(xors, return_counts=True)
            if n.max() >= MIN_SUPPORT:
                offset[y] = found[n.argmax()]
                block = counts[counts.y == y]
                shifted = pd.Series(block["n"].to_numpy(), index=block["v"].to_numpy() ^ offset[y])
                pool = pool.add(shifted, fill_value=0)
                progress = True
    distinct, where = np.unique(years, return_inverse=True)
    aligned = np.array([int(y) in offset for y in distinct])[where]
    shift = np.array([offset.get(int(y), np.uint64(0)) for y in distinct], dtype=np.uint64)[where]
    codes, _ = pd.factorize(inner ^ shift)
    rows = np.flatnonzero(has)
    labels[rows[aligned]] = codes[aligned]
    return labels, {"key": key_name, "years": len(top), "years_aligned": len(offset)}
