"""The real SmolLM2-135M through the whole path: its generated CPU recipe, QLoRA through the real Axolotl CLI
on real LIMA rows, then nextai-eval with the adapter switched off and on: the loss on held-out real rows must
fall."""

from __future__ import annotations

import json

import pytest
import yaml
from axolotl_launch import ROOT, launch_train, write_jsonl
from click.testing import CliRunner

from axolotl_nextai.eval.cli import main as eval_main
from data_builders.sources import lima
from data_builders.sources.base import load

pytestmark = pytest.mark.slow
CUTOFF = 128  # short rows keep the run to about a minute on 2 cores


def lima_rows(start: int, count: int) -> list[dict]:
    """Alpaca rows from the vendored real LIMA rows, as the builders convert them."""
    records = load(lima.SPEC, ROOT / "data_builders" / "real" / "rows" / "lima.jsonl.gz").records
    return [
        {"instruction": r.instruction, "input": r.input, "output": r.output}
        for r in records[start : start + count]
    ]


@pytest.fixture(scope="module")
def adapter(real_model, tmp_path_factory):
    """recipes/smollm2-135m-v5-cpu.yml, paths moved, 8 steps of 4 real rows cut at 128 tokens."""
    workdir = tmp_path_factory.mktemp("smollm2")
    data = write_jsonl(workdir / "train.jsonl", lima_rows(0, 32))
    cfg = yaml.safe_load((ROOT / "recipes" / "smollm2-135m-v5-cpu.yml").read_text())
    cfg.update(
        base_model=str(real_model),
        datasets=[{"path": str(data), "type": "axolotl_nextai.alpaca"}],
        sequence_len=CUTOFF,
        max_steps=8,
        output_dir=str(workdir / "out"),
        dataset_prepared_path=str(workdir / "prepared"),
    )
    run = launch_train(cfg, workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir / "out"


def test_heldout_loss_falls_and_the_table_pairs_base_and_tuned(real_model, adapter, tmp_path):
    heldout = write_jsonl(tmp_path / "heldout.jsonl", lima_rows(100, 12))  # rows 100+: never trained on
    report = json.loads((adapter / "nextai_report.json").read_text())
    assert report["steps"] == 8 and report["loss_finite"] and report["trainable_params"] == 391_680

    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_main,
        [
            "--base-model",
            str(real_model),
            "--adapter",
            str(adapter),
            "--compare-base",
            "--label",
            "tuned",
            "--data-dir",
            str(ROOT / "data_builders" / "benchmark_items" / "demo"),
            "--limit",
            "mmlu=1",
            "--limit",
            "bbq=1",
            "--limit",
            "truthfulqa=1",
            "--heldout",
            str(heldout),
            "--heldout-cutoff",
            str(CUTOFF),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    tuned = json.loads((out / "results.json").read_text())
    base = tuned["baseline"]
    held = tuned["heldout"]
    assert base["heldout"]["rows"] == held["rows"] >= 6 and held["rows"] + held["skipped_rows"] == 12
    assert tuned["heldout"]["loss"] < base["heldout"]["loss"]  # the test the issue sets
    # and not by chance: the paired interval is below zero
    assert tuned["change"]["heldout"]["interval"][1] < 0
    assert base["items"] == tuned["items"] == {"MMLU": 17, "TruthfulQA": 1, "BBQ": 1, "CNN/DM ROUGE-2": 0}
    table = (out / "results.md").read_text()
    assert (
        "| SmolLM2-135M-Instruct (base) |" in table
        and "| tuned |" in table
        and "| change (paired) |" in table
    )
    assert (out / "comparison.png").stat().st_size > 0
