"""The error boundary of every command: an exception no check caught is one line and exit 1, the traceback
only with NEXTAI_DEBUG=1."""

import click
import pytest
from click.testing import CliRunner

from data_builders.boundary import DEBUG_ENV, Guarded, GuardedGroup
from data_builders.errors import DataError


@click.group(cls=GuardedGroup)
def cli():
    pass


@cli.command()
@click.option("--out", default="o.jsonl")
@click.argument("source")
def run(out, source):
    if source == "bug":
        raise KeyError("instruction")
    if source == "disk":
        raise OSError(28, "No space left on device", out)
    raise DataError(f"{source}:3: malformed JSON")


@pytest.mark.parametrize(
    "source, line",
    [
        (
            "bug",
            (
                "cli run --out x.jsonl bug: unexpected KeyError: 'instruction' (not a problem we check for: "
                "rerun with NEXTAI_DEBUG=1 to see the traceback, and please report it)"
            ),
        ),
        ("disk", "x.jsonl: No space left on device"),
        ("rows.jsonl", "rows.jsonl:3: malformed JSON"),
    ],
)
def test_an_uncaught_error_is_one_line_and_exit_1(source, line, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    result = CliRunner().invoke(cli, ["run", "--out", "x.jsonl", source])
    assert result.exit_code == 1 and result.output == f"Error: {line}\n"
    assert isinstance(result.exception, SystemExit)


def test_nextai_debug_lets_the_traceback_through(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    result = CliRunner().invoke(click.command(cls=Guarded)(lambda: {}["x"]))
    assert isinstance(result.exception, KeyError)
