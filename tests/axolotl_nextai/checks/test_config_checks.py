"""Config checks on raw YAML dicts: unknown or mistyped `nextai_` keys, missing dataset files."""

import pytest

from axolotl_nextai.checks.config_checks import (
    ConfigError,
    missing_files,
    plugin_key_problems,
    validate_plugin_keys,
)
from axolotl_nextai.plugin import uses_plugin


def test_valid_keys_parse():
    args = validate_plugin_keys({"nextai_report": False, "base_model": "x"})
    assert args.nextai_report is False


def test_unknown_key_is_named_with_suggestion():
    with pytest.raises(
        ConfigError, match=r"unknown config key `nextai_reprot` \(did you mean `nextai_report`\?\)"
    ):
        validate_plugin_keys({"nextai_reprot": True})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"`nextai_report`.*got 'yes'"):
        validate_plugin_keys({"nextai_report": "yes"})


def test_every_bad_key_is_named_at_once():
    problems = plugin_key_problems(
        {
            "nextai_reprot": True,
            "nextai_gc_frezee": True,
            "nextai_report": "yes",
            "nextai_tiled_mlp_shards": 1,
        }
    )
    assert problems[:2] == [
        "unknown config key `nextai_reprot` (did you mean `nextai_report`?)",
        "unknown config key `nextai_gc_frezee` (did you mean `nextai_gc_freeze`?)",
    ]
    assert "`nextai_report`: Input should be a valid boolean" in problems[2]
    assert "`nextai_tiled_mlp_shards`: Input should be greater than or equal to 2" in problems[2]


def test_missing_dataset_file_names_file_and_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {"datasets": [{"path": "data/v5.jsonl", "type": "axolotl_nextai.alpaca"}]}
    [problem] = missing_files(cfg)
    assert problem.startswith("datasets[0].path: dataset file `data/v5.jsonl` does not exist")
    assert problem.endswith("nextai-data build --mixture v5 --out data/v5.jsonl")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v5.jsonl").write_text("{}\n")
    assert missing_files(cfg) == []


def test_hub_ids_are_not_checked_as_files():
    assert missing_files({"datasets": [{"path": "garage-bAInd/Open-Platypus", "type": "alpaca"}]}) == []


def test_plugin_acts_only_when_asked():
    assert uses_plugin({"plugins": ["axolotl_nextai.NextAIPlugin"]})
    assert uses_plugin({"nextai_report": True})
    assert not uses_plugin({"plugins": ["axolotl.integrations.liger.LigerPlugin"], "base_model": "x"})
