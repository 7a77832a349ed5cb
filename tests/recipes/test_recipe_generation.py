"""The committed family is exactly what recipes/generate.py makes from recipes/matrix.yaml."""

import importlib.util
import shutil
import sys

import pytest
import yaml
from axolotl_launch import ROOT

# recipes/ is a folder of files, not a package: load the script by path (registered first, as dataclasses
# need).
spec = importlib.util.spec_from_file_location("recipes_generate", ROOT / "recipes" / "generate.py")
generate = sys.modules["recipes_generate"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def with_part(matrix, **parts):
    """`matrix` with whole parts replaced, as matrix.yaml would write them (validated again)."""
    return generate.Matrix.model_validate({**matrix.model_dump(by_alias=True), **parts})


def test_committed_files_equal_generated_ones():
    assert generate.stale() == [], "run: python recipes/generate.py"


def test_a_hand_edit_to_a_generated_file_is_reported(tmp_path):
    root = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", root)
    edited = root / "llama2-70b-v3.yml"
    edited.write_text(edited.read_text().replace("num_epochs: 2", "num_epochs: 3"))
    assert generate.stale(root) == [edited]


def test_each_recipe_differs_from_the_template_only_where_the_matrix_says():
    matrix, _, template = generate.load_matrix()
    for recipe in generate.expand(matrix, template)[1:]:
        cfg = yaml.safe_load((ROOT / "recipes" / recipe.path).read_text())
        differing = {key for key in cfg.keys() | template.keys() if cfg.get(key) != template.get(key)}
        assert differing <= set(recipe.changes) and cfg == recipe.config(template), recipe.path
    v3 = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v3.yml").read_text())
    assert v3["num_epochs"] == 2 and v3["datasets"][0]["path"] == "data/v3.jsonl"


def test_a_variant_key_missing_from_the_template_is_refused():
    matrix, _, template = generate.load_matrix()
    matrix = with_part(matrix, ablations={"typo": {"cite": "Table 4", "set": {"lora_alpah": 8}}})
    with pytest.raises(ValueError, match="`lora_alpah` is not in the template"):
        generate.expand(matrix, template)


def test_a_key_the_matrix_does_not_declare_is_refused_in_one_line(tmp_path):
    root = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", root)
    matrix = root / "matrix.yaml"
    matrix.write_text(matrix.read_text().replace("  v3: {cite: ", "  v3: {cit: "))
    with pytest.raises(
        ValueError,
        match=r"matrix.yaml: `mixtures.v3.cite`: Field required.*"
        r"`mixtures.v3.cit`: Extra inputs are not permitted",
    ) as err:
        generate.load_matrix(root)
    assert "\n" not in str(err.value)


def test_the_fast_recipe_adds_its_keys_after_the_template_keys_named():
    lines = (ROOT / "recipes" / "llama2-70b-v5-fast.yml").read_text().splitlines()
    keys = [line.split(":")[0] for line in lines if line and not line.startswith(("#", " ", "-"))]
    added = generate.load_matrix()[0].speed["fast"].add
    assert "sample_packing" in added["group_by_length"]
    for after, new in added.items():
        start = keys.index(after) + 1
        assert keys[start : start + len(new)] == list(new)
    cfg = yaml.safe_load("\n".join(lines))
    assert "axolotl.integrations.liger.LigerPlugin" in cfg["plugins"] and cfg["sequence_len"] == 1024


def test_adding_a_key_the_template_has_is_refused():
    matrix, _, template = generate.load_matrix()
    matrix = with_part(
        matrix, speed={"bad": {"cite": "speed", "add": {"group_by_length": {"sequence_len": 2048}}}}
    )
    with pytest.raises(ValueError, match="`sequence_len` is in the template"):
        generate.expand(matrix, template)


def test_table_6_is_table_4_r8_with_eager_attention():
    """Table 6's caption: FA2 vs not, "where LoRA r value was set at 8, as referenced in Table 4"."""
    eager, fa2 = (
        yaml.safe_load((ROOT / "recipes" / "ablations" / name).read_text())
        for name in ("llama2-70b-v5-eager.yml", "llama2-70b-v5-r8-4096.yml")
    )
    differing = {key for key in eager.keys() | fa2.keys() if eager.get(key) != fa2.get(key)}
    assert differing == {"attn_implementation", "output_dir", "dataset_prepared_path"}
    assert (eager["lora_r"], eager["sequence_len"], eager["optimizer"]) == (8, 4096, "paged_adamw_32bit")
    assert (eager["attn_implementation"], fa2["attn_implementation"]) == ("eager", "flash_attention_2")


def test_lever_sets_add_their_keys_in_order_and_an_unknown_set_is_refused():
    matrix, _, template = generate.load_matrix()
    spec = generate.with_levers(matrix.ablations["r64-4096"], matrix.levers)
    added = list(spec.add["gradient_checkpointing"])
    assert added[0] == "activation_offloading" and added[-1] == "nextai_tiled_mlp_shards"
    assert spec.values["lora_r"] == 64 and "axolotl.integrations.liger.LigerPlugin" in spec.values["plugins"]
    matrix = with_part(
        matrix, ablations={"typo": {"cite": "Table 4", "set": {"lora_r": 8}, "levers": ["cutof-4096"]}}
    )
    with pytest.raises(ValueError, match="`levers: cutof-4096` is not a lever set"):
        generate.expand(matrix, template)


def test_every_table_4_recipe_is_estimated_to_fit_the_40_gb_cap_and_eager_is_not():
    from axolotl_nextai.models.architectures import ARCHITECTURES
    from axolotl_nextai.models.footprint import GIB, peak_estimate_bytes

    arch = ARCHITECTURES["meta-llama/Llama-2-70b-hf"]
    cap = 40e9 / GIB
    for r in (4, 8, 16, 64):
        cfg = yaml.safe_load((ROOT / "recipes" / "ablations" / f"llama2-70b-v5-r{r}-4096.yml").read_text())
        assert peak_estimate_bytes(arch, cfg) / GIB < cap - 0.3, r
    eager = yaml.safe_load((ROOT / "recipes" / "ablations" / "llama2-70b-v5-eager.yml").read_text())
    assert peak_estimate_bytes(arch, eager) / GIB > cap + 5
