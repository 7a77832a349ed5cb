"""The plugin's hooks behind the boundary, and the checks they run before the model loads (no Trainer)."""

import pytest
from axolotl.integrations.base import BasePlugin
from datasets import Dataset

from axolotl_nextai.checks.config_checks import (
    ConfigError,
    HookError,
    missing_files,
    plugin_problems,
    value_problems,
)
from axolotl_nextai.checks.trained_tokens import check_labels, rows_without_labels
from axolotl_nextai.hook_boundary import guard_hooks
from data_builders.boundary import DEBUG_ENV


@guard_hooks
class Broken(BasePlugin):
    def register(self, cfg):
        raise ConfigError("`lora_r`: must be > 0 (got -4)")

    def pre_model_load(self, cfg):
        return {}["nextai_x"]


def test_an_unexpected_error_in_a_hook_is_one_line_naming_the_hook_and_config(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    cfg = {"axolotl_config_path": "r.yml"}
    with pytest.raises(HookError) as err:
        Broken().pre_model_load(cfg)
    assert str(err.value) == (
        "axolotl-nextai pre_model_load (config r.yml): unexpected KeyError: 'nextai_x' (rerun "
        "with NEXTAI_DEBUG=1 to see the traceback, and please report it)"
    )
    with pytest.raises(ConfigError, match="lora_r"):  # our own one-line errors pass as they are
        Broken().register(cfg)
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(KeyError):
        Broken().pre_model_load(cfg)


def test_config_values_that_are_not_finite_or_would_resume_half(tmp_path):
    assert value_problems({"learning_rate": float("nan"), "lora_dropout": float("inf"), "lora_r": 4}) == [
        "`learning_rate`: must be a finite number (got nan)",
        "`lora_dropout`: must be a finite number (got inf)",
    ]
    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-5" / "scheduler.pt").write_bytes(b"x")
    [problem] = missing_files({"resume_from_checkpoint": str(tmp_path / "checkpoint-5")})
    assert "has no optimizer.pt: the Trainer would go on with a fresh one" in problem
    (tmp_path / "checkpoint-5" / "optimizer.pt").write_bytes(b"x")
    assert missing_files({"resume_from_checkpoint": str(tmp_path / "checkpoint-5")}) == []
    assert plugin_problems({"plugins": ["a.A", "b.B"]}, {"a.A": object()}) == [
        "plugins[1] `b.B`: did not import (see the error above it); fix the name or remove the entry"
    ]


def test_rows_with_no_token_to_learn_are_counted_and_all_of_them_refused():
    some = Dataset.from_dict({"labels": [[-100, -100], [-100, 5], [7, 8], []]})
    assert rows_without_labels(some) == (2, 4)
    assert check_labels(some, 8) == (
        "2 of 4 training rows have no token to learn within sequence_len 8 (the prompt "
        "fills them): they cost compute and train nothing"
    )
    with pytest.raises(ConfigError, match="no training row has a token to learn within sequence_len 8"):
        check_labels(Dataset.from_dict({"labels": [[-100] * 8] * 3}), 8)
    assert check_labels(Dataset.from_dict({"labels": [[1, 2]]}).select([0, 0]), 8) is None


def test_register_rereads_the_recipe_for_what_axolotls_parse_let_through(tmp_path):
    from axolotl_nextai.plugin import NextAIPlugin

    recipe = tmp_path / "r.yml"
    recipe.write_text("plugins: [axolotl_nextai.NextAIPlugin]\nlora_r: 4\nlora_r: 64\n")
    with pytest.raises(ConfigError, match=r"r.yml:3: key `lora_r` given twice \(first at line 2\)"):
        NextAIPlugin().register(
            {"plugins": ["axolotl_nextai.NextAIPlugin"], "lora_r": 64, "axolotl_config_path": str(recipe)}
        )
