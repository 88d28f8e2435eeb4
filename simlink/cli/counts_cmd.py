"""``simlink counts``: protected linked counts from a linkage database."""

from __future__ import annotations

from pathlib import Path

import click

from simlink import outputs
from simlink.cli.options import output_option
from simlink.defaults import DEFAULT_TOTAL_EPSILON
from simlink.errors import OutputExistsError, SimlinkError

UNSAFE_WARNING = ("WARNING: --unsafe-no-disclosure-control: these are EXACT counts with no "
                  "suppression, rounding or noise. They can identify people. Do not publish "
                  "or share them outside the linkage unit.")


@click.command()
@click.argument("linkage_db", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@output_option("Write the release to this file instead of standard output.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write charts (PNG) and report.html to this folder.")
@click.option("--repeat-threshold", type=click.IntRange(min=1), default=5, show_default=True,
              help="Contacts needed within the window to count as a repeat-contact person.")
@click.option("--window-days", type=click.IntRange(min=1), default=365, show_default=True,
              help="Length of the rolling window, in days.")
@click.option("--suppress-below", type=click.IntRange(min=2), default=8, show_default=True,
              help="Suppress counts from 1 to this value minus one (10 = ONS practice).")
@click.option("--round-to", type=click.IntRange(min=1), default=5, show_default=True,
              help="Round published counts to the nearest multiple of this.")
@click.option("--rounding", type=click.Choice(["nearest", "midpoint6"]), default="nearest",
              show_default=True,
              help="nearest: to the nearest --round-to; midpoint6: OpenSAFELY's midpoint-6 rule "
                   "(1-6 -> 3, 7-12 -> 9, ...).")
@click.option("--agencies", help="Only these agencies' contacts (comma-separated names).")
@click.option("--period-start", type=click.DateTime(["%Y-%m-%d"]),
              help="Only contacts on or after this date (YYYY-MM-DD).")
@click.option("--period-end", type=click.DateTime(["%Y-%m-%d"]),
              help="Only contacts on or before this date (YYYY-MM-DD).")
@click.option("--no-release-check", "no_release_check", is_flag=True,
              help="Do NOT compare with earlier releases of this database (unsafe: cells may "
                   "then be differenced against them; the output says so).")
@click.option("--on-overlap", type=click.Choice(["suppress", "refuse"]), default="suppress",
              show_default=True,
              help="When a cell would differ by 1..suppress-below-1 from an earlier release: "
                   "suppress it, or refuse the release.")
@click.option("--dp-budget", type=click.FloatRange(min=0, min_open=True),
              help=f"Set this database's total DP epsilon (default {DEFAULT_TOTAL_EPSILON:g}); "
                   "recorded in its release ledger.")
@click.option("--dp-epsilon", type=click.FloatRange(min=0, min_open=True),
              help="Add differential-privacy noise with this total epsilon (needs simlink[dp]).")
@click.option("--dp-seed", type=int,
              help="Seed the DP noise (reproducible: for testing only, never for publication).")
@click.option("--unsafe-no-disclosure-control", "unsafe", is_flag=True,
              help="Publish EXACT counts with no protection (linkage-unit checks only).")
def counts(linkage_db: Path, fmt: str, output: Path | None, overwrite: bool,
           report_dir: Path | None, repeat_threshold: int, window_days: int,
           suppress_below: int, round_to: int, rounding: str, agencies: str | None,
           period_start, period_end, no_release_check: bool, on_overlap: str,
           dp_budget: float | None, dp_epsilon: float | None, dp_seed: int | None,
           unsafe: bool) -> None:
    """Counts about people with repeat crisis contacts across services, never a list of people.

    Every published count goes through disclosure control (suppression of small counts,
    secondary suppression, rounding; optional differential privacy). Every protected release
    is recorded in the database's release ledger and checked against the earlier ones; DP
    releases spend the database's epsilon budget.
    """
    from simlink.counts import DisclosurePolicy, Scope, release, write_report

    if unsafe:
        policy = DisclosurePolicy.unsafe()
    else:
        policy = DisclosurePolicy(suppress_below=suppress_below, round_to=round_to,
                                  rounding=rounding, dp_epsilon=dp_epsilon, dp_seed=dp_seed)
    if output is not None and output.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", path=output)
    if output is not None:
        outputs.check_target(output)
    if report_dir is not None:
        outputs.check_creatable_folder(report_dir, "report folder")
    names = None
    if agencies is not None:
        names = tuple(a.strip() for a in agencies.split(",") if a.strip())
    scope = Scope(agencies=names, start=period_start.date() if period_start else None,
                  end=period_end.date() if period_end else None)
    if no_release_check and not unsafe:
        click.secho("WARNING: --no-release-check: this release is not compared with earlier "
                    "ones and may be differenced against them.", err=True, fg="yellow")
    rel = release(linkage_db, policy=policy, repeat_threshold=repeat_threshold,
                  window_days=window_days, scope=scope, check_overlap=not no_release_check,
                  on_overlap=on_overlap, dp_budget=dp_budget)
    text = rel.render(fmt)
    if unsafe:
        click.secho(UNSAFE_WARNING, err=True, fg="red", bold=True)
    # Files first, standard output last: a failure to write prints no table before its error.
    path = write_report(rel, report_dir) if report_dir is not None else None
    if output is not None:
        outputs.write_text(output, text if text.endswith("\n") else text + "\n")
    else:
        click.echo(text)
    if output is not None:
        click.echo(f"wrote the release to {output}", err=True)
    if path is not None:
        click.echo(f"wrote the report to {path}", err=True)
    if unsafe:
        click.secho(UNSAFE_WARNING, err=True, fg="red", bold=True)


COMMANDS = [counts]
