"""``simlink demo``: the main job end to end on synthetic agencies."""

from __future__ import annotations

from pathlib import Path

import click

from simlink.cli.options import out_dir_option
from simlink.defaults import ERROR_LEVELS


@click.command()
@out_dir_option("Folder for everything the demo writes (holds a secret key: keep it out of version control).",
                default=Path("simlink-demo"), show_default=True)
@click.option("--people", type=click.IntRange(50), default=3000, show_default=True, help="Synthetic people.")
@click.option("--seed", type=click.IntRange(0), default=2026, show_default=True,
              help="Random seed of the synthetic agencies (same seed, same data).")
@click.option("--errors", type=click.Choice(ERROR_LEVELS), default="medium", show_default=True,
              help="How often the synthetic records carry typos, swaps, missing values and aliases.")
@click.option("--overwrite", is_flag=True, help="Replace the contents of an existing demo folder.")
def demo(out_dir: Path, people: int, seed: int, errors: str, overwrite: bool) -> None:
    """Generate agencies, encode, link, and print protected counts and linkage quality."""
    from simlink.demo import quality_lines, run_demo

    result = run_demo(out_dir, people=people, seed=seed, errors=errors, overwrite=overwrite,
                      say=lambda text: click.echo(text, err=True))
    click.echo("")
    click.echo(result.release.to_text())
    click.echo("")
    click.echo("Linkage quality against the synthetic truth (reviewers only; never part of a release):")
    for line in quality_lines(result):
        click.echo(f"  {line}")
    total = sum(result.seconds.values())
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    click.echo(f"\nreport: {result.report}   time: {total:.1f} s ({steps})")


COMMANDS = [demo]
