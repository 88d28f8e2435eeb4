"""``simlink keygen`` and ``simlink schema``: the shared secret and the shared schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from simlink.agency.keys import generate_key_file
from simlink.schema import load_schema


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def keygen(out: Path) -> None:
    """Write a new random 256-bit secret to OUT (mode 0600; never overwrites).

    Share it with the other agencies only, by a secure channel; the linkage unit must
    never receive it.
    """
    generate_key_file(out)
    click.echo(f"wrote a new 256-bit secret to {out} (mode 0600); keep it away from the linkage unit")


@click.group()
def schema() -> None:
    """Show or check a linkage schema (default: the one shipped with simlink)."""


@schema.command("show")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def schema_show(path: Path | None) -> None:
    """Print the schema with every default filled in, and its fingerprint."""
    loaded = load_schema(path)
    click.echo(json.dumps(loaded.to_dict(), indent=2))
    click.echo(f"fingerprint: {loaded.fingerprint}")


@schema.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def schema_check(path: Path | None) -> None:
    """Validate a schema; prints its fingerprint when it is valid."""
    loaded = load_schema(path)
    click.echo(f"schema '{loaded.name}' is valid: {len(loaded.fields)} fields, "
               f"{len(loaded.blocking)} blocking keys; fingerprint {loaded.fingerprint}")


COMMANDS = [keygen, schema]
