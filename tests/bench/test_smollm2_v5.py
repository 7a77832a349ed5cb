"""bench/smollm2_v5.py's training configs: the generated SmolLM2 recipes as run on a GPU, and their CPU
reduction, each passing Axolotl's own validation offline (the GPU run cannot be tried here)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import yaml
from axolotl_launch import ROOT

from axolotl_nextai.checks.recipe_check import check_config

spec = importlib.util.spec_from_file_location("smollm2_v5_bench", ROOT / "bench" / "smollm2_v5.py")
bench = sys.modules["smollm2_v5_bench"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("name", ["faithful", "fast"])
def test_configs_validate_and_differ_from_the_recipe_only_where_stated(name, device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "smollm2-v5.jsonl").touch()
    (tmp_path / "train.jsonl").touch()
    cfg = bench.recipe_config(name, device, epochs=2, out=tmp_path)
    recipe = yaml.safe_load((ROOT / "recipes" / bench.RECIPES[name]).read_text())
    assert (
        cfg["num_epochs"] == 2 and cfg["output_dir"] == str(tmp_path / name) and cfg["save_strategy"] == "no"
    )
    check_config(cfg)
    changed = {key for key in cfg.keys() | recipe.keys() if cfg.get(key) != recipe.get(key)}
    paths = {"num_epochs", "output_dir", "dataset_prepared_path", "save_strategy", "saves_per_epoch"}
    if device == "cuda":
        assert changed <= paths
        return
    assert cfg["plugins"] == ["axolotl_nextai.NextAIPlugin"] and not any(k.startswith("liger_") for k in cfg)
    assert cfg["bf16"] is False and cfg["gradient_checkpointing"] is False and cfg["sequence_len"] == 512
    assert cfg["datasets"][0]["path"] == str(tmp_path / "train.jsonl")
    assert cfg["attn_implementation"] == ("eager" if name == "fast" else "sdpa")
    assert cfg["lora_r"] == recipe["lora_r"] and cfg["learning_rate"] == recipe["learning_rate"]
