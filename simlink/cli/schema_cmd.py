"""``simlink keygen`` and ``simlink schema``: the shared secret and the shared schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from simlink.cli.options import output_option


@click.command()
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@output_option("Key file to write (same as the positional OUT).")
def keygen(out: Path | None, output: Path | None) -> None:
    """Write a new random 256-bit secret to OUT (mode 0600; never overwrites).

    Share it with the other agencies only, by a secure channel; the linkage unit must
    never receive it.
    """
    if out is not None and output is not None and out != output:
        raise click.UsageError("give the key file once: either OUT or -o/--output")
    target = out or output
    if target is None:
        raise click.UsageError("missing the key file to write: simlink keygen -o FILE")
    from simlink.agency.keys import generate_key_file

    generate_key_file(target)
    click.echo(f"wrote a new 256-bit secret to {target} (mode 0600); keep it away from the linkage unit")


@click.group()
def schema() -> None:
    """Show or check a linkage schema (default: the one shipped with simlink)."""


@schema.command("show")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def schema_show(path: Path | None) -> None:
    """Print the schema with every default filled in, and its fingerprint."""
    from simlink.schema import load_schema

    loaded = load_schema(path)
    click.echo(json.dumps(loaded.to_dict(), indent=2))
    click.echo(f"fingerprint: {loaded.fingerprint}")


@schema.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def schema_check(path: Path | None) -> None:
    """Validate a schema; prints its fingerprint when it is valid."""
    from simlink.schema import load_schema

    loaded = load_schema(path)
    click.echo(f"schema '{loaded.name}' is valid: {len(loaded.fields)} fields, "
               f"{len(loaded.blocking)} blocking keys; fingerprint {loaded.fingerprint}")


COMMANDS = [keygen, schema]
