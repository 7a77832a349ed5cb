"""Helpers for the data-builder tests: write rows in a source's original schema to a local file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture
def jsonl(tmp_path):
    """`jsonl(name, rows)` writes tmp/<name>.jsonl and returns its path."""
    return lambda name, rows: write_jsonl(tmp_path / f"{name}.jsonl", rows)
