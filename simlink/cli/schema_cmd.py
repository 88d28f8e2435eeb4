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
    """Write a new random 256-bit secret to -o FILE (or OUT; mode 0600; never overwrites).

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
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True,
              help="toml: a schema file 'schema check' and '--schema' read back (fingerprint as a "
                   "comment); json: the JSON document, then a 'fingerprint: ...' line (the earlier "
                   "output, for scripts that parse it).")
def schema_show(path: Path | None, fmt: str) -> None:
    """Print the schema with every default filled in, and its fingerprint.

    Save it, edit it and pass it back: simlink schema show > my.toml; simlink schema check my.toml
    """
    from simlink.schema import load_schema, schema_toml

    loaded = load_schema(path)
    if fmt == "json":
        click.echo(json.dumps(loaded.to_dict(), indent=2))
        click.echo(f"fingerprint: {loaded.fingerprint}")
    else:
        click.echo(schema_toml(loaded), nl=False)


@schema.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def schema_check(path: Path | None) -> None:
    """Validate a schema; prints its fingerprint when it is valid."""
    from simlink.schema import load_schema

    loaded = load_schema(path)
    click.echo(f"schema '{loaded.name}' is valid: {len(loaded.fields)} fields, "
               f"{len(loaded.blocking)} blocking keys; fingerprint {loaded.fingerprint}")
    from simlink.audit.token_chain import chains

    keys = [k.name for k in loaded.blocking]
    for field in loaded.fields:
        if field.normaliser != "person_name":
            continue
        for chain in {c.derivation: c for c in reversed(chains(loaded, keys, field.name))}.values():
            click.echo(f"warning: blocking keys {', '.join(chain.keys)} share {field.name}:{chain.derivation}: "
                       "they chain into classes of that code over the whole population, which the linkage "
                       "unit can count (docs/threat-model.md, token_chain)", err=True)


COMMANDS = [keygen, schema]
