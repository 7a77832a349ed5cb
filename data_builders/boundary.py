"""One error boundary for every command of both packages: nothing a user can cause ends in a traceback.

A click command made with `cls=Guarded` (a group with `cls=GuardedGroup`, whose subcommands inherit it) turns:

- a `DataError` (bad input, already one line naming file:line or the key) into that line, exit 1;
- an `OSError` naming a file (disk full, permission denied) into "FILE: reason", exit 1;
- anything else into one line naming the command, the inputs it was given and the error, and how to see the
  traceback: `NEXTAI_DEBUG=1` (one variable for the whole package; the training plugin reads it too);
- SIGTERM into a `Terminated` exception while the command runs, so the cleanup a Ctrl-C gets (temporaries
  removed, the earlier output left as it was) runs for a `kill` or a job scheduler's stop too: exit 143.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

import click
from click.core import ParameterSource

from data_builders.errors import DataError, first_line, single_line

DEBUG_ENV = "NEXTAI_DEBUG"
SHOWN_VALUE = 60  # characters of one option's value in the one-line message


def debugging() -> bool:
    """`NEXTAI_DEBUG` is set (to anything but 0): let tracebacks through."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def how_to_debug() -> str:
    return f"rerun with {DEBUG_ENV}=1 to see the traceback"


class Terminated(BaseException):
    """SIGTERM, raised where the program was, like KeyboardInterrupt for SIGINT."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def terminate_as_exception():
    """While the block runs, SIGTERM raises `Terminated` (only where Python can handle it: the main thread, a
    handler not set by someone else)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def given_inputs(ctx: click.Context) -> str:
    """The arguments and options the user gave, as "--out data/v5.jsonl --mixture v5"."""
    parts = []
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params.get(param.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        name = param.opts[0] if isinstance(param, click.Option) else ""
        for item in values:
            text = "" if item is True else str(item)
            text = text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."
            parts.append(" ".join(part for part in (name, text) if part))
    return " ".join(parts)


def unexpected(err: Exception, ctx: click.Context) -> str:
    """The one line an exception no check of ours caught becomes."""
    if isinstance(err, DataError):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or first_line(err)}"
    inputs = given_inputs(ctx)
    where = f"{ctx.command_path} {inputs}".rstrip()
    return (
        f"{where}: unexpected {type(err).__name__}: {first_line(err)} (not a problem we check for: "
        f"{how_to_debug()}, and please report it)"
    )


class Guarded(click.Command):
    """A click command behind the boundary (see the module docstring)."""

    def invoke(self, ctx: click.Context):
        try:
            with terminate_as_exception():
                return super().invoke(ctx)
        except click.ClickException as err:
            err.message = single_line(err.message)  # a key or value from the user's file may hold "\n"
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except Terminated:
            click.echo(
                f"{ctx.command_path}: stopped by SIGTERM (temporaries removed, earlier output as it was)",
                err=True,
            )
            ctx.exit(128 + signal.SIGTERM)
        except Exception as err:
            if debugging():
                raise
            raise click.ClickException(unexpected(err, ctx)) from None


class GuardedGroup(click.Group):
    """A click group whose subcommands are `Guarded`."""

    command_class = Guarded
