"""recipe_check --world-size on the N-GPU recipes (recipes/multi-gpu/, from recipes/matrix.yaml's `multi_gpu`;
each is validated at its own world size in test_recipe_validation.py): the rows a step over all ranks, the
one-GPU rows where N allows (test_recipe_validation.py: a one-GPU recipe checked at 2 refused for the lever
not tested there)."""

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


def test_the_2_gpu_recipes_check_at_2_ranks_and_train_4_rows_a_step(data_dir):
    recipes = [str(MULTI_GPU / f"llama2-70b-v5{variant}-2gpu.yml") for variant in ("", "-fast")]
    result = CliRunner().invoke(main, ["--world-size", "2", *recipes])
    assert result.exit_code == 0, result.output
    assert result.output.count("(2 processes: 4 rows a step)") == 2


def test_8_gpus_train_8_rows_a_step_and_keep_the_warm_up_in_rows():
    eight = yaml.safe_load((MULTI_GPU / "llama2-70b-v5-8gpu.yml").read_text())
    assert (eight["micro_batch_size"], eight["gradient_accumulation_steps"]) == (1, 1)
    assert eight["warmup_steps"] == 50  # Table 3's 100 steps of 4 rows: the same rows at 8 a step
    four = yaml.safe_load((MULTI_GPU / "llama2-70b-v5-fast-4gpu.yml").read_text())
    assert (four["micro_batch_size"], four["gradient_accumulation_steps"], four["warmup_steps"]) == (1, 1, 36)
