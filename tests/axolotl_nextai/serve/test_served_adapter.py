"""An adapter trained by the real Axolotl CLI, served over the HELM API and scored by nextai-eval."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from axolotl_nextai.eval.cli import main as eval_main
from axolotl_nextai.serve import HelmModel, create_app
from data_builders.alpaca_prompt import render_prompt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adapter(reference):
    """The adapter of the runtime tests' reference run (../conftest.py): tiny-cpu.yml's QLoRA, trained through
    `accelerate launch -m axolotl.cli.train`."""
    out = reference[0] / "out"
    assert (out / "adapter_model.safetensors").is_file()
    return out


def test_served_adapter_changes_the_model_and_keeps_the_api(tiny_model, adapter, helm_model):
    request = {
        "prompt": render_prompt("Name a primary colour."),
        "temperature": 1e-7,
        "max_new_tokens": 6,
        "top_k_per_token": 2,
        "echo_prompt": True,
    }
    tuned = TestClient(create_app(HelmModel.load(str(tiny_model), str(adapter)))).post(
        "/process", json=request
    )
    base = TestClient(create_app(helm_model)).post("/process", json=request)
    assert tuned.status_code == base.status_code == 200
    tuned, base = tuned.json(), base.json()
    assert "".join(t["text"] for t in tuned["tokens"]) == tuned["text"]
    first, *scored = tuned["tokens"]
    assert first["top_logprob"] == {} and all(t["top_logprob"] for t in scored)  # the first has no context
    # Same prompt, same tokens scored: the adapter's weights must move the log-probabilities.
    assert tuned["tokens"][0]["text"] == base["tokens"][0]["text"]
    assert tuned["logprob"] != pytest.approx(base["logprob"], abs=1e-6)


def test_eval_scores_base_plus_adapter(tiny_model, adapter, paper_task_files, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_main,
        [
            "--base-model",
            str(tiny_model),
            "--adapter",
            str(adapter),
            "--data-dir",
            str(paper_task_files),
            "--limit",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads((out / "results.json").read_text())
    assert report["model"] == str(adapter) and report["scores"]["MMLU"] is not None
