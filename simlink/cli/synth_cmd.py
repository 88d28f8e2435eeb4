"""``simlink synth`` (synthetic agency files with a known answer) and ``simlink evaluate``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from simlink.cli.options import json_option, out_dir_option, write_json
from simlink.defaults import ERROR_LEVELS


@click.command()
@click.option("--people", required=True, type=click.IntRange(1), help="Number of synthetic people.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Random seed (same seed, same files).")
@out_dir_option("Folder for police.csv, ambulance.csv, ed.csv, mental_health.csv and truth.csv.", required=True)
@click.option("--errors", "level", type=click.Choice(ERROR_LEVELS), default="medium", show_default=True,
              help="Error level of the recorded identifiers.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2024-01-01", show_default=True,
              help="First day of the contact period.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default="2025-12-31", show_default=True,
              help="Last day of the contact period.")
@click.option("--debug-errors", is_flag=True, help="Also write debug/errors.parquet: the errors applied per record.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def synth(people: int, seed: int, out_dir: Path, level: str, start: _dt.datetime, end: _dt.datetime,
          debug_errors: bool, overwrite: bool) -> None:
    """Write synthetic agency files and the answer key (truth.csv) into OUT_DIR."""
    if end.date() < start.date():
        raise click.BadParameter("must not be before --start", param_hint="--end")
    from tqdm import tqdm

    from simlink.synth import SynthConfig, write_synth

    config = SynthConfig(people=people, seed=seed, errors=level, start=start.date(), end=end.date())
    with tqdm(total=people, unit=" people", unit_scale=True, desc="synthesising", disable=None, leave=False) as bar:
        summary = write_synth(config, out_dir, overwrite=overwrite, debug=debug_errors, progress=bar.update)
    click.echo(summary.line())


@click.command()
@click.argument("linkage", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--truth", "truth_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="truth.csv written by 'simlink synth'.")
@json_option("Write the metrics as JSON to this file instead of the table ('-' or a bare --json as the "
             "last option = standard output).")
def evaluate(linkage: Path, truth_path: Path, json_out: Path | None) -> None:
    """Quality of LINKAGE (linkage database, or CSV/Parquet of agency, record_id, person_key) against the truth."""
    from simlink.evaluate import evaluate_files

    quality = evaluate_files(linkage, truth_path).as_dict()
    if json_out is not None:
        write_json(json_out, quality)
        if str(json_out) != "-":
            click.echo(f"wrote the metrics to {json_out}", err=True)
        return
    width = max(len(k) for k in quality)
    for key, value in quality.items():
        shown = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
        click.echo(f"{key.ljust(width)}  {shown}")


COMMANDS = [synth, evaluate]
