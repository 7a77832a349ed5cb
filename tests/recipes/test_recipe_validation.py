"""Every shipped recipe passes Axolotl's validation offline with the plugin registered, and holds only known
keys."""

import re
from pathlib import Path

import pytest
import yaml
from axolotl_launch import ROOT
from click.testing import CliRunner

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.recipe_check import check_config, known_keys, main, unknown_keys

RECIPES = sorted((ROOT / "recipes").rglob("*.yml"))
TEMPLATE = ROOT / "recipes" / "llama2-70b-v5.yml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Run from an empty folder holding empty stand-ins for every recipe's data file: the plugin checks that
    they exist, and nothing here reads them."""
    monkeypatch.chdir(tmp_path)
    for recipe in RECIPES:
        for dataset in load(recipe)["datasets"]:
            (tmp_path / dataset["path"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / dataset["path"]).touch()
    return tmp_path


def test_the_family_is_all_there():
    names = {path.relative_to(ROOT / "recipes").as_posix() for path in RECIPES}
    expected = {f"llama2-70b-v{i}.yml" for i in range(1, 8)} | {
        "llama2-13b-v5.yml",
        "mistral-7b-v5.yml",
        "llama-30b-v5.yml",
        "llama-65b-v5.yml",
        "tiny-cpu.yml",
    }
    assert expected <= names
    assert (
        len([n for n in names if n.startswith("ablations/")]) == 9
    )  # Table 4: 4 ranks, 5: 4 sets, 6: FA2 off


def world_size(recipe: Path) -> int:
    """The GPUs a recipe is written for: N for recipes/multi-gpu/*-<N>gpu.yml, else 1."""
    found = re.search(r"-(\d+)gpu\.yml$", recipe.name) if recipe.parent.name == "multi-gpu" else None
    return int(found.group(1)) if found else 1


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_recipe_validates_offline_with_the_plugin(recipe, data_dir):
    raw = load(recipe)
    cfg = check_config(raw, world_size=world_size(recipe))
    # Validation keeps what the recipe pins: nothing was dropped or coerced away on the way.
    for key in (
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "sequence_len",
        "optimizer",
        "learning_rate",
        "micro_batch_size",
        "gradient_accumulation_steps",
        "num_epochs",
        "load_in_4bit",
    ):
        assert cfg[key] == raw[key], key
    assert cfg["adapter"] == "qlora" and cfg["train_on_inputs"] is False
    assert "axolotl_nextai.NextAIPlugin" in cfg["plugins"]


def test_v5_pins_the_paper(data_dir):
    cfg = check_config(load(TEMPLATE))
    assert cfg["base_model"] == "meta-llama/Llama-2-70b-hf"
    assert (cfg["lora_r"], cfg["lora_alpha"], cfg["lora_dropout"]) == (4, 16, 0.05)
    assert cfg["lora_target_modules"] == ["o_proj", "down_proj"]
    assert (cfg["sequence_len"], cfg["micro_batch_size"], cfg["gradient_accumulation_steps"]) == (1024, 1, 4)
    assert (cfg["learning_rate"], cfg["lr_scheduler"], cfg["warmup_steps"], cfg["weight_decay"]) == (
        0.0003,
        "cosine",
        100,
        0.0,
    )
    assert cfg["optimizer"] == "paged_adamw_8bit" and cfg["num_epochs"] == 1
    assert cfg["bf16"] is True and cfg["gradient_checkpointing"] is True and cfg["group_by_length"] is True
    assert cfg["bnb_config_kwargs"] == {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    assert (
        cfg["datasets"][0]["path"] == "data/v5.jsonl"
        and cfg["datasets"][0]["type"] == "axolotl_nextai.alpaca"
    )
    assert load(TEMPLATE)["attn_implementation"] == "flash_attention_2"


def test_every_recipe_key_is_known(data_dir):
    check_config(load(TEMPLATE))  # registers the plugin, so its keys count as known
    known, dataset_known = known_keys()
    assert "nextai_require_flash_attention" in known and "lora_alpha" in known
    for recipe in RECIPES:
        assert unknown_keys(load(recipe), known, dataset_known) == [], recipe


@pytest.mark.parametrize(
    "edit,message",
    [
        (("lora_alpha:", "lora_alpah:"), "unknown key `lora_alpah` (did you mean `lora_alpha`?)"),
        (("    type: axolotl", "    typ: axolotl"), "unknown key `datasets[0].typ` (did you mean `type`?)"),
    ],
    ids=["top-level", "dataset"],
)
def test_planted_typo_in_a_copy_is_caught_with_the_key_named(edit, message, data_dir):
    text = TEMPLATE.read_text()
    assert edit[0] in text
    copy = data_dir / "copy.yml"
    copy.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as error:
        check_config(load(copy))
    assert message in str(error.value)


def test_a_misspelt_optimizer_is_caught(data_dir):
    # Axolotl's schema takes any string here; the Trainer would refuse it only after the 70B model has loaded.
    with pytest.raises(
        ConfigError, match=r"unknown optimizer `paged_adamw_8bitt` \(did you mean `paged_adamw_8bit`\?\)"
    ):
        check_config({**load(TEMPLATE), "optimizer": "paged_adamw_8bitt"})


def test_a_bad_value_is_refused_by_axolotl(data_dir):
    with pytest.raises(Exception, match="lora_dropout"):
        check_config({**load(TEMPLATE), "lora_dropout": "a little"})


def test_recipe_check_cli_reports_each_recipe(data_dir):
    typo = data_dir / "typo.yml"
    typo.write_text(TEMPLATE.read_text().replace("lora_dropout:", "lora_droput:"))
    result = CliRunner().invoke(main, [str(TEMPLATE), str(typo)])
    assert result.exit_code == 1
    assert f"ok      {TEMPLATE}" in result.output
    assert f"FAILED  {typo}: unknown key `lora_droput` (did you mean `lora_dropout`?)" in result.output


def test_checked_for_several_processes_a_lever_not_tested_there_is_refused(data_dir):
    result = CliRunner().invoke(main, ["--world-size", "2", str(TEMPLATE)])
    assert result.exit_code == 1
    assert (
        f"FAILED  {TEMPLATE}: `nextai_fuse_accumulation` is not tested with a world size of 2 yet: remove "
        "it, or train in one process without FSDP"
    ) in result.output


def test_a_fresh_clone_checks_the_recipe_and_warns_about_its_data_file(tmp_path, monkeypatch):
    """The README's command, run where `data/v5.jsonl` has not been built yet."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [str(TEMPLATE)])
    assert result.exit_code == 0, result.output
    assert (
        f"warning {TEMPLATE}: datasets[0].path: dataset file `data/v5.jsonl` does not exist" in result.output
    )
    assert "nextai-data build --mixture v5 --out data/v5.jsonl (training refuses it)" in result.output
    assert result.output.rstrip().endswith(f"ok      {TEMPLATE}")


def test_recipe_check_help_prints_usage():
    result = CliRunner().invoke(main, ["--help"], prog_name="nextai-recipe-check")
    assert result.exit_code == 0 and result.output.startswith("Usage: nextai-recipe-check")
    assert "FAILED" not in result.output


def test_eager_at_4096_is_refused_under_a_40_gb_cap_before_anything_loads(data_dir):
    """Table 6's eager row cannot fit 40 GB (6 GiB of attention probabilities a layer): the plugin's register
    hook, which `axolotl train` and this check both run, says so with the memory it needs."""
    eager = load(ROOT / "recipes" / "ablations" / "llama2-70b-v5-eager.yml")
    check_config(eager)  # its target is an 80 GB card
    with pytest.raises(
        ConfigError, match=r"attn_implementation: eager .* at least 39\.\d\d GiB.*37\.25 GiB allowed"
    ):
        check_config({**eager, "nextai_gpu_memory_cap_gb": 40})
    check_config(
        {**load(ROOT / "recipes" / "ablations" / "llama2-70b-v5-r8-4096.yml"), "nextai_gpu_memory_cap_gb": 40}
    )
