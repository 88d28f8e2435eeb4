"""Which synthetic errors make true pairs miss blocking (uses `simlink synth --debug-errors`).

Regenerates the quality data set with the debug error log (same seed, same world), then
counts true contact pairs across distinct encodings that no blocking rule keeps, by the
errors applied to either contact. Prints a table; writes results/blocking_misses.json.

    python benchmarks/blocking_misses.py --people 20000 --seed 7 --errors medium
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

import linkeval
from simlink.link.load import _hash_sql, encoded_columns
from simlink.schema import load_schema
from simlink.synth import SynthConfig, write_synth


def main() -> None:
    args, folder, data = linkeval.quality_data_from_args(__doc__.splitlines()[0])
    debug = folder / "dbg" / "debug"
    if not debug.exists():
        write_synth(SynthConfig(people=args.people, seed=args.seed, errors=args.errors), folder / "dbg",
                    debug=True, overwrite=True)
    bits = json.loads((debug / "error_bits.json").read_text())["bits"]
    schema = load_schema(None)
    blocks = [b.name for b in schema.blocking]
    con = duckdb.connect()
    files = ", ".join(f"'{p}'" for p in data["encoded"])
    con.execute(f"""CREATE TABLE ev AS SELECT agency, record_id, {_hash_sql(encoded_columns(schema))} AS enc_id,
                    {', '.join('blk__' + b for b in blocks)} FROM read_parquet([{files}])""")
    con.execute(f"""CREATE TABLE err AS SELECT agency, CAST(record_id AS VARCHAR) AS record_id, person_id, applied
                    FROM read_parquet('{debug}/errors.parquet')""")
    unmatched = con.execute("SELECT count(*) FROM ev ANTI JOIN err USING (agency, record_id)").fetchall()[0][0]
    if unmatched:
        raise SystemExit("debug run does not reproduce the encoded data")
    con.execute("""CREATE TABLE ep AS SELECT enc_id, person_id, bit_or(applied) AS applied, count(*) AS n
                   FROM ev JOIN err USING (agency, record_id) GROUP BY ALL""")
    con.execute("CREATE TABLE enc AS SELECT DISTINCT ON (enc_id) * EXCLUDE (agency, record_id) FROM ev")
    kept = " OR ".join(f"coalesce(x.blk__{b} = y.blk__{b}, false)" for b in blocks)
    con.execute(f"""CREATE TABLE tp AS SELECT a.n * b.n AS w, a.applied | b.applied AS applied, ({kept}) AS kept
                    FROM ep a JOIN ep b ON a.person_id = b.person_id AND a.enc_id < b.enc_id
                    JOIN enc x ON x.enc_id = a.enc_id JOIN enc y ON y.enc_id = b.enc_id""")
    same = con.execute("SELECT sum(n * (n - 1) / 2) FROM ep").fetchall()[0][0]
    across, missed = con.execute("SELECT sum(w), sum(w) FILTER (WHERE NOT kept) FROM tp").fetchall()[0]
    total = int(same) + int(across)
    rows = {}
    for name, bit in bits.items():
        with_it, missed_with_it = con.execute(
            f"SELECT sum(w) FILTER (WHERE applied & {bit} <> 0), sum(w) FILTER (WHERE applied & {bit} <> 0 AND NOT kept) FROM tp"
        ).fetchall()[0]
        rows[name] = {"pairs": int(with_it or 0), "missed": int(missed_with_it or 0)}
    hopeless = bits["name_swap"] | bits["alias"]
    missed_swap_alias = con.execute(f"SELECT sum(w) FROM tp WHERE NOT kept AND applied & {hopeless} <> 0").fetchall()[0][0] or 0
    out = {"true_contact_pairs": total, "missed": int(missed), "missed_with_name_swap_or_alias": int(missed_swap_alias),
           "contact_pair_completeness": 1 - missed / total,
           "contact_pair_completeness_without_swap_alias": 1 - (missed - missed_swap_alias) / total, "by_error": rows}
    print(f"true contact pairs {total:,}; missed by blocking {int(missed):,} "
          f"(completeness {out['contact_pair_completeness']:.4f}); of these with a name swap or alias "
          f"{int(missed_swap_alias):,}; completeness without them {out['contact_pair_completeness_without_swap_alias']:.4f}")
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["missed"]):
        print(f"  {name:20s} in {row['pairs']:>9,} pairs, in {row['missed']:>7,} missed ({row['missed'] / missed:.1%})")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"blocking_misses_{args.errors}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
