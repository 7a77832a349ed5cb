"""Fixtures for the data-builder tests: rows in a source's original schema, the paper's benchmarks, as local
files."""

from __future__ import annotations

from pathlib import Path

import pytest
from axolotl_launch import write_jsonl
from benchmark_files import write_benchmarks


@pytest.fixture
def jsonl(tmp_path):
    """`jsonl(name, rows)` writes tmp/<name>.jsonl and returns its path."""
    return lambda name, rows: write_jsonl(tmp_path / f"{name}.jsonl", rows)


@pytest.fixture(scope="session")
def benchmarks_dir(tmp_path_factory) -> Path:
    """Every paper benchmark as a small local file (`benchmark_files.py`); tests that change one copy it
    first."""
    return write_benchmarks(tmp_path_factory.mktemp("benchmarks"))
