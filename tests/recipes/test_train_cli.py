"""End to end through the real `accelerate launch -m axolotl.cli.train` on the tiny CPU model."""

import importlib.util
import json

import pytest
from axolotl_launch import ROOT, tiny_cpu_config


@pytest.mark.slow
def test_qlora_trains_and_memorises(memorised):
    """The run: `memorised` in tests/conftest.py (lr 0.01, 8 steps; everything else is tiny-cpu.yml)."""
    tmp_path, result = memorised
    assert result.returncode == 0, result.stderr[-4000:]
    log = result.stdout + result.stderr

    assert "Plugin loaded successfully: axolotl_nextai.NextAIPlugin" in log
    assert "axolotl-nextai: plugin registered" in log  # our register() hook really ran
    out = tmp_path / "out"
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["down_proj", "o_proj"] and adapter["r"] == 4

    report = json.loads((out / "nextai_report.json").read_text())  # written by the plugin's callback
    losses = [row["loss"] for row in report["losses"]]
    assert len(losses) == 8 and report["loss_finite"]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.5, losses
    # r=4 on o_proj, down_proj
    assert report["trainable_params"] == 4 * (128 * 4 + 4 * 128 + 256 * 4 + 4 * 128)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"nextai_reprot": True}, "unknown config key `nextai_reprot` (did you mean `nextai_report`?)"),
        ({"nextai_report": "often"}, "`nextai_report`: Input should be a valid boolean"),
        ({"lora_alpah": 16}, "unknown key `lora_alpah` (did you mean `lora_alpha`?)"),
        (
            {"datasets": [{"path": "data/v5.jsonl", "type": "axolotl_nextai.alpaca"}]},
            "dataset file `data/v5.jsonl` does not exist",
        ),
        (
            {"nextai_fuse_accumulation": True, "sample_packing": True},
            "nextai_fuse_accumulation needs unpacked rows",
        ),
    ],
    ids=["unknown-key", "wrong-type", "axolotl-key-typo", "missing-file", "fused-packing"],
)
def test_bad_recipe_fails_before_training(tiny_model, tmp_path, run_axolotl, overrides, message):
    cfg = tiny_cpu_config(tiny_model, tmp_path, **overrides)
    result = run_axolotl(cfg, tmp_path)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_fast_recipe_packing_trains_on_cpu(tiny_model, demo_jsonl, tmp_path, run_axolotl):
    """The fast recipe's packing and batch (Liger and offloading aside: CUDA only) through the real CLI on
    CPU; the report counts the packs' padding out."""
    spec = importlib.util.spec_from_file_location(
        "fast_vs_faithful_cpu", ROOT / "bench" / "fast_vs_faithful_cpu.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    overrides = bench.fast_overrides()
    assert overrides["sample_packing"] is True
    cfg = tiny_cpu_config(
        tiny_model,
        tmp_path,
        datasets=[{"path": str(demo_jsonl), "type": "axolotl_nextai.alpaca"}],
        max_steps=3,
        **overrides,
    )
    result = run_axolotl(cfg, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "nextai_report.json").read_text())
    assert report["steps"] == 3 and report["loss_finite"]
    slots = (
        report["steps"] * cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"] * cfg["sequence_len"]
    )
    assert 0 < report["trained_tokens"] <= report["real_tokens"] < slots  # the packs' padding is not real
