"""Options shared by the sub-commands, so one concept has one spelling everywhere.

* ``-o/--output FILE`` — a file the command writes;
* ``--out-dir DIR`` — a folder the command fills (``synth``, ``demo``);
* ``--json FILE`` — also write the figures as JSON (``-`` = standard output).

Old spellings stay accepted as *hidden aliases* (not shown in ``--help``) so scripts
written against earlier versions keep working.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click


class AliasOption(click.Option):
    """A click option whose ``hidden_aliases`` work but are left out of the help text."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = frozenset(hidden_aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def output_option(help: str, *, required: bool = False) -> Callable:
    return click.option("-o", "--output", "output", required=required,
                        type=click.Path(dir_okay=False, path_type=Path), help=help)


def out_dir_option(help: str, **kwargs: Any) -> Callable:
    return click.option("--out-dir", "--out", "out_dir", cls=AliasOption, hidden_aliases=("--out",),
                        type=click.Path(file_okay=False, path_type=Path), help=help, **kwargs)


def json_option(help: str) -> Callable:
    """``--json FILE``; a bare ``--json`` (as the last option) means standard output."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                        is_flag=False, flag_value="-", default=None, help=help)


def write_json(target: Path, doc: Any) -> None:
    """Write ``doc`` as JSON to ``target`` (``-`` = standard output)."""
    text = json.dumps(doc, indent=2)
    if str(target) == "-":
        click.echo(text)
    else:
        from simlink import outputs  # built beside the target, renamed in: no half-written JSON

        outputs.write_text(target, text + "\n")
