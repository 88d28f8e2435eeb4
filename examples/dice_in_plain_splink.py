"""simlink's Dice comparison in a Splink model of your own, on encoded files.

Usage: python examples/dice_in_plain_splink.py ENCODED.parquet [ENCODED.parquet ...]
The linkage unit's view: encoded files only, no key. ``simlink link`` does all this (and
more: term frequencies, a measured prior, clustering); this shows the parts to reuse.
"""
import sys

from splink import DuckDBAPI, Linker, SettingsCreator, block_on

import simlink

con = simlink.load_encodings(sys.argv[1:])   # table link_encodings: enc_id, <field>__w*, __pop, fh__*, blk__*
words = {f.name: f.words for f in simlink.load_schema().fields}   # the schema the files were encoded with


def dice(field, thresholds):
    return simlink.DiceAtThresholds(field, words[field], thresholds, hash_column=f"fh__{field}")


settings = SettingsCreator(
    link_type="dedupe_only",
    unique_id_column_name="enc_id",
    blocking_rules_to_generate_predictions=[block_on("blk__dob"), block_on("blk__names"), block_on("blk__postcode")],
    comparisons=[
        dice("given_name", [0.985, 0.96]),    # names are balanced filters: unrelated names score ~0.87
        dice("family_name", [0.985, 0.96]),
        dice("date_of_birth", [0.75]),
        dice("postcode", [0.9, 0.75]),
        dice("sex", []),                      # identical or not
    ],
)
linker = Linker(DuckDBAPI(connection=con).register("link_encodings"), settings)
linker.training.estimate_probability_two_random_records_match(
    ["l.fh__date_of_birth = r.fh__date_of_birth AND l.fh__family_name = r.fh__family_name"], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=2e5, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("fh__date_of_birth"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("fh__given_name", "fh__family_name"))
pairs = linker.inference.predict(threshold_match_probability=0.95)
scored = pairs.as_pandas_dataframe()
print(f"{len(scored)} pairs of distinct encodings at match probability >= 0.95")
print(scored[["enc_id_l", "enc_id_r", "match_weight", "match_probability"]].head().to_string(index=False))
