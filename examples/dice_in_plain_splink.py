"""simlink's comparisons in a Splink model of your own, on encoded files.

Usage: python examples/dice_in_plain_splink.py ENCODED.parquet [ENCODED.parquet ...]
The linkage unit's view: encoded files only, no key. Format 2 stores each name only as copies
salted by a scope (full date of birth, full postcode), comparable where two records share
that scope; simlink's comparison creators (ordinary Splink creators) know which copy to use.
``simlink link`` does all this and more: the names' u is estimated inside the scopes, where
plain random sampling (used below) overstates agreement among non-matches.
"""
import sys

from splink import DuckDBAPI, Linker, SettingsCreator, block_on

import simlink
from simlink.link.settings import comparisons

con = simlink.load_encodings(sys.argv[1:])   # table link_encodings: enc_id, copies' words and pops, blk__*, eq__*
schema = simlink.load_schema()               # the schema the files were encoded with

settings = SettingsCreator(
    link_type="dedupe_only",
    unique_id_column_name="enc_id",
    blocking_rules_to_generate_predictions=[block_on("blk__dob"), block_on("blk__full_name"), block_on("blk__postcode")],
    comparisons=comparisons(schema),         # NamesComparison, ScopedDice (date of birth, postcode), DiceAtThresholds
)
linker = Linker(DuckDBAPI(connection=con).register("link_encodings"), settings)
linker.training.estimate_probability_two_random_records_match(
    ["l.eq__dob = r.eq__dob AND l.eq__full_name = r.eq__full_name"], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=2e5, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("eq__dob"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("eq__full_name"))
pairs = linker.inference.predict(threshold_match_probability=0.95)
scored = pairs.as_pandas_dataframe()
print(f"{len(scored)} pairs of distinct encodings at match probability >= 0.95")
print(scored[["enc_id_l", "enc_id_r", "match_weight", "match_probability"]].head().to_string(index=False))
