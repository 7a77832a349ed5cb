"""The memory estimate against the measured peaks, and eager attention refused before loading when its
probabilities cannot fit beside the weights."""

import dataclasses

import pytest

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.memory_budget import budget, eager_attention_problems, kept_outputs_problems
from axolotl_nextai.models.architectures import ARCHITECTURES
from axolotl_nextai.models.footprint import GIB, peak_estimate_bytes

LLAMA2_70B = ARCHITECTURES["meta-llama/Llama-2-70b-hf"]
PAPER = {"lora_r": 4, "lora_target_modules": ["o_proj", "down_proj"], "optimizer": "paged_adamw_8bit"}
ALL_SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LEVERS_4096 = {
    "lora_r": 8,
    "sequence_len": 4096,
    "optimizer": "paged_adamw_32bit",
    "activation_offloading": "hidden_states",
    "liger_rms_norm": True,
    "liger_glu_activation": True,
}


@pytest.mark.parametrize(
    "cfg,measured_gib",
    # peak allocated on an H100/H200 (stock HF + PEFT, dense rows; the last: Axolotl, rows of ~4,000 tokens)
    [
        ({**PAPER, "sequence_len": 256}, 34.97),
        ({**PAPER, "sequence_len": 1024}, 36.25),
        ({**PAPER, "sequence_len": 2048}, 37.98),
        ({**PAPER, "sequence_len": 4096}, 41.46),
        ({**PAPER, "sequence_len": 1024, "lora_target_modules": ALL_SEVEN}, 36.66),
        ({**LEVERS_4096, "lora_target_modules": ["o_proj", "down_proj"], "sequence_len": 4000}, 36.27),
    ],
    ids=["256", "1024", "2048", "4096", "all-seven-1024", "r8-4000-offload-liger"],
)
def test_estimate_within_a_few_tenths_of_a_gib_of_the_measured_peaks(cfg, measured_gib):
    assert abs(peak_estimate_bytes(LLAMA2_70B, cfg) / GIB - measured_gib) < 0.15


def test_each_lever_lowers_the_estimate_by_its_share():
    base = {**LEVERS_4096, "lora_r": 64, "lora_target_modules": ["o_proj", "down_proj"]}
    steps = [
        base,
        {**base, "nextai_dequant_chunk_mib": 64},
        {**base, "nextai_dequant_chunk_mib": 64, "nextai_tiled_mlp_shards": 8},
        {
            **base,
            "nextai_dequant_chunk_mib": 64,
            "nextai_tiled_mlp_shards": 8,
            "nextai_embeddings_on_cpu": True,
        },
    ]
    peaks = [peak_estimate_bytes(LLAMA2_70B, cfg) / GIB for cfg in steps]
    assert peaks[0] - peaks[1] == pytest.approx((448 - 64) / 1024)  # the whole MLP weight against one chunk
    assert peaks[0] > 37.25 > peaks[2] > peaks[3]  # r 64 at 4,096 fits the 40 GB cap with the tiled MLP
    assert peaks[2] - peaks[3] == pytest.approx(32000 * 8192 * 2 / GIB)


def test_the_cap_is_the_budget_before_the_card():
    assert budget(40, 80 * 10**9) == (40e9, "nextai_gpu_memory_cap_gb: 40 (37.25 GiB)")
    assert budget(None, 80 * 2**30) == (80 * 2**30, "this GPU's 80.00 GiB")
    assert budget(None, None) is None


def test_eager_at_4096_is_refused_under_a_40_gb_cap_naming_what_it_needs():
    cfg = {**LEVERS_4096, "lora_target_modules": ["o_proj", "down_proj"], "attn_implementation": "eager"}
    [message] = eager_attention_problems(cfg, LLAMA2_70B, budget(40, None))
    assert "64 heads x 4,096 x 4,096" in message and "6.00 GiB" in message
    assert "at least 39.87 GiB" in message and "37.25 GiB allowed by nextai_gpu_memory_cap_gb: 40" in message
    assert "attn_implementation: sdpa or flash_attention_2" in message
    assert eager_attention_problems(cfg, LLAMA2_70B, budget(80, None)) == []  # an 80 GB card holds it
    # 0.38 GiB
    assert eager_attention_problems({**cfg, "sequence_len": 1024}, LLAMA2_70B, budget(40, None)) == []
    assert (
        eager_attention_problems({**cfg, "attn_implementation": "sdpa"}, LLAMA2_70B, budget(40, None)) == []
    )


FAST = {
    **PAPER,
    "sequence_len": 1024,
    "micro_batch_size": 4,
    "activation_offloading": "hidden_states",
    "liger_rms_norm": True,
    "liger_glu_activation": True,
    "nextai_saved_matmuls": ["gate_proj", "up_proj", "down_proj"],
}


def test_a_fused_pass_is_as_long_as_its_token_budget():
    from axolotl_nextai.models.footprint import micro_step_tokens

    fused = {
        **PAPER,
        "sequence_len": 1024,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 4,
        "nextai_fuse_accumulation": True,
    }
    assert micro_step_tokens(fused) == 1024
    assert micro_step_tokens({**fused, "nextai_fuse_accumulation_max_tokens": 2048}) == 2048
    # the window's 4 rows
    assert micro_step_tokens({**fused, "nextai_fuse_accumulation_max_tokens": 8192}) == 4096
    # a row gets its pass
    assert micro_step_tokens({**fused, "nextai_fuse_accumulation_max_tokens": 512}) == 1024
    assert (
        micro_step_tokens(
            {**fused, "gradient_accumulation_steps": 1, "nextai_fuse_accumulation_max_tokens": 2048}
        )
        == 1024
    )  # nothing to fuse


def test_kept_outputs_prefetched_are_what_the_h200_measured():
    # the fast recipe with flex attention: 35.87 GiB allocated; keeping gate/up/down's outputs: 36.37
    # (2026-12-01); down_proj's output is now skipped, not kept
    from axolotl_nextai.models.footprint import kept_output_bytes, peak_parts

    assert abs(peak_parts(LLAMA2_70B, FAST)["kept matmul outputs prefetched"] / GIB - (36.37 - 35.87)) < 0.1
    assert kept_output_bytes(LLAMA2_70B, FAST) == 80 * 4096 * 2 * 28672 * 2  # 37.6 GB on the host


def test_kept_outputs_larger_than_the_host_memory_are_refused_naming_what_they_need():
    assert kept_outputs_problems(FAST, LLAMA2_70B, available_bytes=50e9) == []
    [message] = kept_outputs_problems(FAST, LLAMA2_70B, available_bytes=30e9)
    assert message.startswith(
        "nextai_saved_matmuls: keeping down_proj, gate_proj, up_proj of 80 layers at 4,096"
    )
    assert (
        "needs 37.6 GB of host memory" in message
        and "30.0 GB is available" in message
        and "\n" not in message
    )
    # several ranks on one host: each keeps its own micro-step's outputs
    two_packs = {**FAST, "micro_batch_size": 2}
    assert kept_outputs_problems(two_packs, LLAMA2_70B, available_bytes=50e9, local_ranks=2) == []
    [message] = kept_outputs_problems(two_packs, LLAMA2_70B, available_bytes=30e9, local_ranks=2)
    assert "2,048 tokens a micro-step on each of this host's 2 ranks needs 37.6 GB" in message


def test_the_fast_recipe_on_a_host_without_the_memory_is_refused_before_loading(monkeypatch):
    import yaml
    from axolotl_launch import ROOT

    from axolotl_nextai.checks.launch import Launch
    from axolotl_nextai.checks.recipe_check import check_config

    recipe = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5-fast.yml").read_text())
    here = Launch.here

    def on_a_host_with(available: float):
        return classmethod(lambda cls, cfg: dataclasses.replace(here(cfg), host_available_bytes=available))

    monkeypatch.setattr(Launch, "here", on_a_host_with(16e9))
    with pytest.raises(
        ConfigError,
        match="keeping down_proj, gate_proj, up_proj of 80 layers at 4,096 tokens a "
        "micro-step needs 37.6 GB of host memory",
    ):
        check_config(recipe)
    monkeypatch.setattr(Launch, "here", on_a_host_with(64e9))
    check_config(recipe)
