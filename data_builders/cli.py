"""`nextai-data`: command-line entry to the data builders. Commands parse arguments and call; no logic here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from axolotl_nextai.atomic import atomic_write


@click.group()
def main() -> None:
    """Build and inspect the nextAI instruction mixtures (Alpaca JSONL)."""


@main.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSONL file to write.")
def sample(out: Path) -> None:
    """Write the bundled Alpaca sample (32 hand-written rows) for demos and tests."""
    text = resources.files("data_builders").joinpath("sample/alpaca_demo.jsonl").read_text("utf-8")
    with atomic_write(out) as f:
        f.write(text)
    click.echo(f"wrote {len(text.splitlines())} rows to {out}")
