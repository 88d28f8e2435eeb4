"""The ``simlink`` command: one sub-command per user task, each a thin layer over the API.

Each sub-command lives in its own module and is registered here. Errors raised on purpose
(:class:`simlink.errors.SimlinkError`) print one line and exit 2; anything unexpected prints
only its type — never its message, which might quote a value — unless ``--debug`` is given.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

from simlink import __version__
from simlink.errors import SimlinkError


EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
# 128 + signal number, as shells report a process ended by that signal.
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Signals:
    """SIGTERM (sent by ``timeout`` and service managers) takes the same clean path as Ctrl-C.

    Both raise KeyboardInterrupt in the main thread, so every ``finally`` that removes a
    partial file runs. The signal is remembered: a library that wraps the interrupt in an
    error of its own (Splink turns an interrupted DuckDB query into a SplinkException) is
    still reported as an interruption, not as an internal error.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:  # noqa: ANN001 - signal handler signature
        self.received = signum
        raise KeyboardInterrupt

    def __enter__(self) -> "_Signals":
        self.received = None
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_SIGNAL:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def _interrupted(signum: int | None) -> None:
    name = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    click.echo(f"simlink: {name}; no output was written", err=True)
    sys.exit(EXIT_SIGNAL.get(signum or signal.SIGINT, 130))


def _usage_error(exc: click.UsageError) -> None:
    """Click prints usage, a hint and the error on four lines; the contract is one line."""
    command = exc.ctx.command_path.replace("main", "simlink", 1) if exc.ctx else "simlink"
    click.echo(f"simlink: error: {command}: {exc.format_message()} (see --help)", err=True)
    sys.exit(EXIT_USER_ERROR)


class SafeGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_error(exc)
            raise  # not reached

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        with _Signals() as signals:
            try:
                return super().invoke(ctx)
            except click.UsageError as exc:
                _usage_error(exc)
            except SimlinkError as exc:
                if signals.received is not None:
                    _interrupted(signals.received)
                click.echo(f"simlink: error: {exc}", err=True)
                sys.exit(EXIT_USER_ERROR)
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
                raise
            except KeyboardInterrupt:
                _interrupted(signals.received)
            except Exception as exc:  # noqa: BLE001 - last line of defence against leaking values
                if signals.received is not None:
                    _interrupted(signals.received)
                if ctx.obj and ctx.obj.get("debug"):
                    raise
                if isinstance(exc, OSError) and exc.filename is not None:
                    # A path the user gave that the system refused (a folder, no permission, ...).
                    reason = exc.strerror or type(exc).__name__
                    click.echo(f"simlink: error: {exc.filename}: {reason}", err=True)
                    sys.exit(EXIT_USER_ERROR)
                click.echo(f"simlink: internal error ({type(exc).__name__}); rerun with --debug for details", err=True)
                sys.exit(EXIT_INTERNAL)


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
