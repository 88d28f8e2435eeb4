"""The privacy x quality table of the encoding candidates, from result files only.

Reads benchmarks/results/linkage_unit_attack_<people>_<candidate>.json (the linkage unit's
strongest attack per field, all records and people with >= 5 contacts, every key) and
benchmarks/results/encoding_quality*.json (pairwise F1 against cleartext Splink, recall with
one date of birth missing, headline-count errors) and writes
benchmarks/results/encoding_frontier.md, which docs/threat-model.md quotes.

    python benchmarks/encoding_frontier.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# result-file suffix of each candidate's privacy run -> (schema name in the quality files, label)
CANDIDATES = {
    "": ("v1_default", "v1 default: names salted by birth year, balanced, permuted (format 1) [0.2 audit]"),
    "_v1_unhardened": ("v1_unhardened", "v1 filters, no hardening [0.2 audit]"),
    "_v2_bloom_names": ("v2_bloom_names", "v2 scopes, names as Bloom filters (popcount = length) [0.2 audit]"),
    "_v2_wide": ("v2_wide", "v2 scopes + partial-key scopes (soundex of the other name with birthday / sector) "
                 "[0.2 audit: before token_chain, which its keys would not survive]"),
    "_v2_partial_name_keys": ("v2_partial_name_keys", "v2 as landed in 0.2: MinHash copies + four partial-name "
                              "blocking keys (they chain: `token_chain`)"),
    "_default": ("default", "**v2 default**: names as MinHash copies scoped by date of birth and postcode; "
                 "no two blocking keys share a name part"),
}
CELLS = ["given_name|all", "given_name|5+ contacts", "family_name|all", "family_name|5+ contacts"]


def privacy(people: int, suffix: str) -> dict | None:
    path = RESULTS / f"linkage_unit_attack_{people}{suffix}.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text())["rows"]
    out = {"keys": len(rows), "file": path.name}
    for cell in CELLS:
        excess = [r[cell]["rate"] - r[cell]["bar_blind"] for r in rows]
        out[cell] = (max(r[cell]["rate"] for r in rows), max(excess), rows[0][cell]["bar_blind"])
    out["passes"] = all(r["passes"] for r in rows)
    return out


def quality() -> dict:
    found: dict = {}
    # Later files win: names sort in the order the runs were made (…, _model, _v03 = simlink 0.3).
    for path in sorted(RESULTS.glob("encoding_quality*.json")):
        for data, row in json.loads(path.read_text())["data"].items():
            clear = row.get("cleartext", {}).get("sweep", {}).get("0.95", {}).get("f1")
            for cand, c in row["candidates"].items():
                found.setdefault(cand, {})[data] = (c["pair_f1"], clear, c["missing_dob"]["recall"], c["count_errors"])
    return found


def main() -> None:
    q = quality()
    lines = ["# Encoding candidates: privacy against the linkage unit x linkage quality", "",
             "Privacy: strongest audit attack (`simlink audit`, linkage-unit view, birth year known, true persons),"
             " worst key; `+x` = points above the bar's blind guess (bar: +1.0). Quality: pairwise F1 at the"
             " default decision, cleartext Splink on the same data in brackets. Sources: the JSON files named."
             " [0.2 audit]: measured by the audit of simlink 0.2, without `token_chain` and without the"
             " list's fallback guess for unplaced records; a FAIL there stands, a hold is not current.", "",
             "| candidate | people (keys) | given all | given 5+ | family all | family 5+ | privacy bar |"
             " F1 synth-medium | F1 synth-high | F1 FEBRL4 | F1 FEBRL3 | recall, 1 DOB missing (medium) |"
             " people / 2+ services / repeat (medium) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for suffix, (cand, label) in CANDIDATES.items():
        for people in (20000, 100000):
            p = privacy(people, suffix)
            if p is None:
                continue
            cells = [f"{p[c][0]:.2%} ({p[c][1] * 100:+.1f})" for c in CELLS]
            qc = q.get(cand, {})

            def f1(name: str) -> str:
                if name not in qc:
                    return "–"
                f, clear, _, _ = qc[name]
                return f"{f:.4f}" + (f" ({clear:.4f})" if clear else "")

            med = qc.get("synth-medium")
            recall = f"{med[2]:.3f}" if med and med[2] is not None else "–"
            counts = " / ".join(f"{v:+.1%}" for v in med[3].values()) if med else "–"
            lines.append(f"| {label} | {people:,} ({p['keys']}) | " + " | ".join(cells)
                         + f" | {'holds' if p['passes'] else 'FAILS'} | {f1('synth-medium')} | {f1('synth-high')} | "
                         f"{f1('febrl4')} | {f1('febrl3')} | {recall} | {counts} |")
    out = RESULTS / "encoding_frontier.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
