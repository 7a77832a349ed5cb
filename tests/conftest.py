"""Shared fixtures: a tiny Llama built once per session, and a runner for the real Axolotl CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from axolotl_launch import OFFLINE_ENV, launch_train

os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama + trained BPE tokenizer, built offline by the package's own builder."""
    from axolotl_nextai.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def demo_jsonl(tmp_path_factory) -> Path:
    """The v5 mixture built from the shipped sample, as `make demo` builds it (`nextai-data build --sample`)."""
    from data_builders.build import build, sample_dir
    from data_builders.mixing import load_mixture
    from data_builders.writers import write_build

    out = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    write_build(build(load_mixture("v5"), source_dir=sample_dir()), out)
    return out


@pytest.fixture
def run_axolotl():
    """Returns `launch_train`; a failed launch is the caller's to assert on (some tests expect failure)."""
    return launch_train
