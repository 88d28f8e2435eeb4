"""``simlink link``: run at the linkage unit, on encoded files only (no key needed)."""

from __future__ import annotations

from pathlib import Path

import click

from simlink.cli.options import output_option
from simlink.defaults import DEFAULT_BLOCK_CAP


@click.command()
@click.argument("encoded", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@output_option("Linkage database (DuckDB) to write; OUTPUT.model.json and OUTPUT.charts/ go beside it.",
               required=True)
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Link pairs at or above this match probability (e.g. 0.999). Default: match weight >= "
                   "log2(candidate pairs per encoding) + 1.5, a cut that tightens as the candidates grow.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Reuse a model file from an earlier run (OUTPUT.model.json) instead of training.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--backend", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Where Splink runs; spark needs the 'spark' extra.")
@click.option("--memory-limit", default="6GB", show_default=True, help="DuckDB memory limit, beyond which it spills to --temp-dir (also the Spark driver memory when "
                   "simlink starts the session).")
@click.option("--temp-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for DuckDB's spill files (and Spark's checkpoints) when the data outgrow the memory "
                   "limit; default the system's temporary folder.")
@click.option("--threads", type=click.IntRange(1), help="DuckDB threads, or local Spark cores (default: all cores).")
@click.option("--block-cap", type=int, default=DEFAULT_BLOCK_CAP, show_default=True,
              help="Most distinct encodings a blocking token may hold; bigger blocks are taken apart (finer "
                   "keys, name bands, tiles) so pairs grow linearly. 0: no cap (pairs grow as the square).")
@click.option("--no-charts", is_flag=True, help="Do not write OUTPUT.charts/ (Splink match-weight and m/u charts).")
def link(encoded: tuple[Path, ...], output: Path, threshold: float | None, model_path: Path | None, overwrite: bool,
         backend: str, memory_limit: str, temp_dir: Path | None, threads: int | None, block_cap: int,
         no_charts: bool) -> None:
    """Link ENCODED files (one per agency) into persons; one file deduplicates it alone.

    Progress of each phase goes to stderr when it is a terminal."""
    if block_cap == 1 or block_cap < 0:
        raise click.BadParameter("must be 0 (no cap) or at least 2", param_hint="'--block-cap'")
    from simlink.link import link_files

    result = link_files(list(encoded), output, threshold=threshold, model=model_path, overwrite=overwrite,
                        backend=backend, charts=not no_charts, memory_limit=memory_limit, threads=threads,
                        temp_dir=temp_dir, block_cap=block_cap or None)
    for note in result.notes:
        click.echo(f"simlink: note: {note}", err=True)
    click.echo(result.line())
    if result.model_file:
        click.echo(f"model: {result.model_file}" + (f"; charts: {result.charts[0].parent}" if result.charts else ""))


COMMANDS = [link]
