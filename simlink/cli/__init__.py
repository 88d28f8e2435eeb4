"""The ``simlink`` command: one sub-command per user task, each a thin layer over the API.

Each sub-command lives in its own module and is registered here. Errors raised on purpose
(:class:`simlink.errors.SimlinkError`) print one line and exit 2; anything unexpected prints
only its type — never its message, which might quote a value — unless ``--debug`` is given.
"""

from __future__ import annotations

import sys

import click

from simlink import __version__
from simlink.errors import SimlinkError


class SafeGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SimlinkError as exc:
            click.echo(f"simlink: error: {exc}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("simlink: interrupted; no output was written", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - last line of defence against leaking values
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"simlink: internal error ({type(exc).__name__}); rerun with --debug for details", err=True)
            sys.exit(3)


@click.group(cls=SafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simlink")
@click.option("--debug", is_flag=True, help="Show full tracebacks (may include data values).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Privacy-preserving record linkage for crisis-contact records."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from simlink.cli import audit_cmd, counts_cmd, demo_cmd, encode_cmd, link_cmd, schema_cmd, synth_cmd

    for module in (schema_cmd, encode_cmd, synth_cmd, link_cmd, counts_cmd, audit_cmd, demo_cmd):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
