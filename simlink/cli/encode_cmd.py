"""``simlink encode``: run at an agency, on its own machine, with the shared secret."""

from __future__ import annotations

from pathlib import Path

import click

from simlink.cli.options import output_option


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Secret key file made by 'simlink keygen'.")
@click.option("--agency", required=True, help="This agency's name, e.g. police (lower case).")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Linkage schema (TOML); default: the schema shipped with simlink.")
@output_option("Encoded Parquet file to write.", required=True)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--invalid", type=click.Choice(["error", "missing"]), default="error", show_default=True,
              help="What to do with a date or sex code that cannot be read.")
@click.option("--extra-field", "extra_fields", multiple=True, metavar="COLUMN=NORMALISER",
              help="Also encode this identifying column (e.g. address_line=text, soc_sec_id=identifier); "
                   "every agency must name the same.")
@click.option("--chunk-rows", type=click.IntRange(1000), default=200_000, show_default=True,
              help="Rows per chunk (bounds memory).")
def encode(input_path: Path, key_path: Path, agency: str, schema_path: Path | None, output: Path,
           overwrite: bool, invalid: str, extra_fields: tuple[str, ...], chunk_rows: int) -> None:
    """Encode INPUT (CSV or Parquet) into a file that holds no raw identifier."""
    from tqdm import tqdm

    from simlink.agency.encode import encode_file
    from simlink.agency.keys import read_key_file
    from simlink.schema import load_schema, with_extra_fields

    secret = read_key_file(key_path)
    schema = with_extra_fields(load_schema(schema_path), extra_fields)
    with tqdm(unit=" rows", unit_scale=True, desc=f"encoding {agency}", disable=None, leave=False) as bar:
        summary = encode_file(input_path, output, secret=secret, agency=agency, schema=schema,
                              overwrite=overwrite, strict=invalid == "error", chunk_rows=chunk_rows,
                              progress=bar.update)
    click.echo(summary.line())


COMMANDS = [encode]
