"""``simlink audit``: run the built-in attacks on an encoded file before it leaves the agency."""

from __future__ import annotations

from pathlib import Path

import click

from simlink.cli.options import json_option, write_json


@click.command("audit")
@click.argument("encoded", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Attacker's public name list: CSV with header name,frequency[,field] "
                   "(field = given_name or family_name; empty = both). Default: bundled US Census 1990 lists.")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The agency's own input file that was encoded: used only to score the guesses "
                   "(never printed). Without it the audit reports upper bounds.")
@json_option("Also write the figures as JSON to this file ('-' = standard output).")
@click.option("--fail-on-risk", is_flag=True, help="Exit with status 1 if a measured attack exceeds the 1% bar.")
def audit(encoded: Path, reference: Path | None, truth: Path | None, json_out: Path | None, fail_on_risk: bool) -> None:
    """Attack ENCODED as an outsider would (no key) and print the re-identification risk."""
    from simlink.audit import audit_file

    report = audit_file(encoded, reference, truth)
    click.echo(report.text())
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if fail_on_risk and report.passes is False:
        raise SystemExit(1)


COMMANDS = [audit]
