"""Every GPU ablation (bench/gpu/ablations.yaml) is a config Axolotl accepts, so no device time goes to a typo."""

import importlib.util

import pytest
import yaml
from axolotl_launch import ROOT

from axolotl_nextai.recipe_check import check_config

spec = importlib.util.spec_from_file_location("run_config", ROOT / "bench" / "gpu" / "run_config.py")
run_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_config)
ABLATIONS = list(yaml.safe_load(run_config.ABLATIONS.read_text()))


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_validates_offline_with_its_plugins(name, tmp_path, monkeypatch):
    from axolotl_nextai.args import NextAIArgs

    required = run_config.ablation(name).get("requires")
    if required and required not in NextAIArgs.model_fields:
        pytest.skip(f"{name} needs `{required}`, a plugin key not merged into this branch yet")
    monkeypatch.chdir(tmp_path)
    cfg = run_config.load_run(name)
    for dataset in cfg["datasets"]:
        (tmp_path / dataset["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / dataset["path"]).touch()
    assert run_config.ablation(name)["prediction"]
    check_config(cfg)


def test_standalone_engines_are_named_and_the_rest_train_through_axolotl():
    assert run_config.engine("stock-grouped") == "hf" and run_config.engine("unsloth-grouped") == "unsloth"
    assert run_config.engine("faithful-grouped") == "axolotl"
    assert run_config.engine("recipes/llama2-70b-v5.yml") == "axolotl"


def test_null_removes_a_key_and_an_unknown_name_lists_the_known_ones():
    no_liger = run_config.load_run("fast-no-liger")
    assert "liger_rope" not in no_liger and no_liger["plugins"] == ["axolotl_nextai.NextAIPlugin"]
    with pytest.raises(SystemExit, match="fast-no-liger"):
        run_config.load_run("fast-no-ligr")
