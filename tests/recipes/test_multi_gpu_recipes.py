"""The N-GPU recipes (recipes/multi-gpu/, from recipes/matrix.yaml's `multi_gpu`) pass recipe_check at the world size
they run at, train the one-GPU recipe's rows a step where N allows, and a one-GPU recipe checked at 2 ranks is
refused for the lever that breaks there."""

import pytest
import yaml
from axolotl_launch import ROOT
from click.testing import CliRunner

from axolotl_nextai.checks.recipe_check import main

MULTI_GPU = ROOT / "recipes" / "multi-gpu"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v5.jsonl").touch()


@pytest.mark.parametrize(("gpus", "rows"), [(2, 4), (4, 4), (8, 8)])
def test_each_n_gpu_recipe_checks_at_its_world_size(gpus, rows, data_dir):
    recipes = [str(MULTI_GPU / f"llama2-70b-v5{variant}-{gpus}gpu.yml") for variant in ("", "-fast")]
    result = CliRunner().invoke(main, ["--world-size", str(gpus), *recipes])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"({gpus} ranks: {rows} rows a step)") == 2
    eight = yaml.safe_load((MULTI_GPU / "llama2-70b-v5-8gpu.yml").read_text())
    assert eight["warmup_steps"] == 50  # Table 3's 100 steps of 4 rows: the same rows at 8 a step


def test_a_one_gpu_recipe_at_two_ranks_is_refused_naming_the_lever(data_dir):
    result = CliRunner().invoke(main, ["--world-size", "2", str(ROOT / "recipes" / "llama2-70b-v5.yml")])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "`nextai_fuse_accumulation` with 2 ranks: not supported" in result.output
