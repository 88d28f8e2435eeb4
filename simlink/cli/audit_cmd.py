"""``simlink audit``: attack the encoded files as the linkage unit would, and give a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import click

from simlink import outputs
from simlink.cli.options import json_option, write_json

FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("audit")
@click.argument("encoded", nargs=-1, required=True, type=FILE)
@click.option("--reference", type=FILE, default=None,
              help="Attacker's public name list: CSV with header name,frequency[,field][,year_of_birth] "
                   "(field = given_name or family_name; empty = both; year_of_birth = a list by year). "
                   "Default: bundled US Census 1990 lists.")
@click.option("--truth", type=FILE, multiple=True,
              help="The input each ENCODED file was encoded from, once per file in the same order: used only to "
                   "score the guesses (never printed). Without it the audit cannot give a verdict.")
@click.option("--persons", type=FILE, default=None,
              help="The linkage unit's own linkage: a 'simlink link' database, or CSV agency,record_id,person_id. "
                   "Default: --truth-persons (a perfect linkage).")
@click.option("--truth-persons", type=FILE, default=None,
              help="True persons, CSV agency,record_id,person_id (e.g. synth truth.csv): picks the people with "
                   ">= 5 contacts.")
@click.option("--no-year", is_flag=True, help="Do not assume the attacker knows each record's birth year.")
@json_option("Also write every figure as JSON to this file ('-' = standard output).")
@click.option("--fail-on-risk", is_flag=True, hidden=True, help="Kept for old scripts: failing is the default.")
def audit(encoded: tuple[Path, ...], reference: Path | None, truth: tuple[Path, ...], persons: Path | None,
          truth_persons: Path | None, no_year: bool, json_out: Path | None, fail_on_risk: bool) -> None:
    """Attack ENCODED (all agencies' files together, as the linkage unit holds them) and print
    the re-identification rates beside the blind guess. Exit 1 unless the bar is met."""
    from simlink.audit.reference import read_reference
    from simlink.audit.run import audit_paths

    if json_out is not None and str(json_out) != "-":
        outputs.check_target(json_out)
    ref = read_reference(reference)
    verdict = audit_paths(list(encoded), ref, list(truth) or None, persons, truth_persons, assume_year=not no_year)
    if json_out is not None:  # the file first: a failure to write it prints no report before its error
        write_json(json_out, json.loads(json.dumps(verdict.to_dict(), default=str)))
    click.echo(verdict.text())
    if verdict.passes is not True:
        raise SystemExit(1)


COMMANDS = [audit]
