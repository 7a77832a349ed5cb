"""The FSDP traps, each one line naming the key, before anything loads."""

import pytest

from axolotl_nextai.checks.multi_rank import fsdp_problems, rows_per_step

QLORA_FSDP2 = {
    "load_in_4bit": True,
    "adapter": "qlora",
    "optimizer": "adamw_torch",
    "fsdp_version": 2,
    "fsdp_config": {"auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "cpu_ram_efficient_loading": False},
}


def test_a_sound_fsdp2_qlora_config_passes_and_no_fsdp_means_no_fsdp_problem():
    assert fsdp_problems(QLORA_FSDP2) == []
    assert fsdp_problems({**QLORA_FSDP2, "bnb_config_kwargs": {"bnb_4bit_quant_storage": "bfloat16"}}) == []
    assert fsdp_problems({"load_in_4bit": True, "optimizer": "paged_adamw_8bit"}) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"bnb_config_kwargs": {"bnb_4bit_quant_storage": "uint8"}},
            "bnb_4bit_quant_storage: uint8 under FSDP",
        ),
        ({"fsdp_config": {"offload_params": True}}, "fsdp_config.offload_params: true with 4-bit weights"),
        ({"fp8": True}, "fp8 under FSDP without fsdp_config.cpu_ram_efficient_loading"),
        ({"optimizer": "paged_adamw_8bit"}, "optimizer: paged_adamw_8bit is a bitsandbytes optimizer"),
    ],
)
def test_each_fsdp_trap_is_one_line_naming_its_key_and_thread(change, named):
    (problem,) = fsdp_problems({**QLORA_FSDP2, **change})
    assert named in problem and "\n" not in problem


def test_a_prequantized_uint8_checkpoint_is_refused_whatever_bnb_config_kwargs_say(tmp_path):
    """A pre-quantized checkpoint's config.json sets the storage; the recipe's bnb_config_kwargs cannot change
    it."""
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "bitsandbytes"}}')
    cfg = {
        **QLORA_FSDP2,
        "base_model": str(tmp_path),
        "bnb_config_kwargs": {"bnb_4bit_quant_storage": "bfloat16"},
    }
    (problem,) = fsdp_problems(cfg)
    assert "is pre-quantized with bnb_4bit_quant_storage uint8 (its config.json decides" in problem
    (tmp_path / "config.json").write_text(
        '{"quantization_config": {"quant_method": "bitsandbytes", "bnb_4bit_quant_storage": "bfloat16"}}'
    )
    assert fsdp_problems(cfg) == []


def test_rows_per_step_counts_every_rank():
    assert rows_per_step({"micro_batch_size": 1, "gradient_accumulation_steps": 2}, 2) == 4
