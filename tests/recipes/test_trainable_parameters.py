"""Trainable parameters of every recipe, from a meta-device model (no weights) and Axolotl's own LoRA config.

Three routes must agree: peft on the meta model, the LoRA shapes read off that model's modules, and the closed
form in axolotl_nextai/models/footprint.py that recipes/README.md's table is generated from.
"""

import pytest
import yaml
from accelerate import init_empty_weights
from axolotl_launch import ROOT
from transformers import AutoConfig, AutoModelForCausalLM

from axolotl_nextai.checks.recipe_check import check_config
from axolotl_nextai.models.architectures import ARCHITECTURES as ARCH
from axolotl_nextai.models.footprint import lora_trainable, total_parameters

GPU_RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yml") if p.name != "tiny-cpu.yml")
PAPER_TRAINABLE = 17_039_360  # Table 9: Llama-2-70B, r=4 on o_proj + down_proj
TABLE5 = ["llama2-70b-v5.yml"] + [
    f"ablations/llama2-70b-v5-target-{s}.yml" for s in ("qk", "attn", "ffn", "all")
]


def lora_model(recipe_name: str, monkeypatch, tmp_path):
    """(peft model on the meta device, validated cfg) for a recipe, built as Axolotl would build its
    adapter."""
    from axolotl.loaders.adapter import load_lora
    from peft import get_peft_model

    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((ROOT / "recipes" / recipe_name).read_text())
    for dataset in raw["datasets"]:
        (tmp_path / dataset["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / dataset["path"]).touch()
    cfg = check_config(raw)
    arch = ARCH[cfg["base_model"]].config_values()
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch.pop("model_type"), **arch))
    # SmolLM2 shares embeddings with lm_head; on the meta device nothing ties them by itself
    model.tie_weights()
    assert model.num_parameters() == total_parameters(ARCH[cfg["base_model"]])
    _, lora_config = load_lora(model, cfg, config_only=True)  # Axolotl's LoraConfig from the recipe's keys
    return get_peft_model(model, lora_config), cfg


def test_llama2_70b_v5_has_the_papers_trainable_parameters(monkeypatch, tmp_path):
    model, _ = lora_model("llama2-70b-v5.yml", monkeypatch, tmp_path)
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable == PAPER_TRAINABLE
    assert f"{100 * trainable / total:.4f}" == "0.0247"


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_peft_module_shapes_and_closed_form_agree(recipe, monkeypatch, tmp_path):
    name = recipe.relative_to(ROOT / "recipes").as_posix()
    model, cfg = lora_model(name, monkeypatch, tmp_path)
    trainable, _ = model.get_nb_trainable_parameters()
    targets = cfg["lora_target_modules"]
    from_shapes = sum(
        cfg["lora_r"] * (module.in_features + module.out_features)
        for module_name, module in model.base_model.model.named_modules()
        if module_name.rsplit(".", 1)[-1] in targets and hasattr(module, "lora_A")
    )
    assert trainable == from_shapes == lora_trainable(ARCH[cfg["base_model"]], cfg["lora_r"], targets)


def test_table5_counts(monkeypatch, tmp_path, capsys):
    """Table 5's target sets at r=4 on Llama-2-70B; `pytest -s` prints them. Attention + FFN output is v5."""
    counts = {}
    for name in TABLE5:
        model, cfg = lora_model(name, monkeypatch, tmp_path)
        counts[", ".join(cfg["lora_target_modules"])] = model.get_nb_trainable_parameters()
    with capsys.disabled():
        print("\nTable 5, Llama-2-70B, r=4:")
        for targets, (trainable, total) in counts.items():
            print(f"  {targets:<60} {trainable:>12,}  {100 * trainable / total:.4f} %")
    per = {t: n for t, (n, _) in counts.items()}
    everything = per["q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"]
    assert everything == per["q_proj, k_proj, v_proj, o_proj"] + per["gate_proj, up_proj, down_proj"]
    assert per["o_proj, down_proj"] == PAPER_TRAINABLE
