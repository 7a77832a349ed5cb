"""Real tokens, N of 6N, MFU and step timing, without a Trainer."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from axolotl_nextai.models.architectures import ARCHITECTURES
from axolotl_nextai.run.throughput import (
    StepClock,
    count_tokens,
    linear_weight_count,
    mfu,
    rate,
    steps_per_epoch,
)


def test_llama2_70b_linear_weights_are_the_notes_68_71e9():
    # Llama-2-70B's shape, built on the meta device (no memory): docs/gpu-memory.md gives N = 68.71e9.
    arch = ARCHITECTURES["meta-llama/Llama-2-70b-hf"].config_values()
    assert arch.pop("model_type") == "llama"
    config = LlamaConfig(**arch)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert round(linear_weight_count(model.named_modules()) / 1e9, 2) == 68.71


def test_lora_matrices_are_not_counted(tiny_model):
    from peft import LoraConfig, get_peft_model

    model = LlamaForCausalLM.from_pretrained(tiny_model)
    plain = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["o_proj", "down_proj"]))
    assert linear_weight_count(peft_model.named_modules()) == plain


def test_packed_attention_mask_counts_positions_not_segment_ids():
    inputs = {
        "input_ids": torch.tensor([[5, 6, 7, 8, 9, 0]]),
        "attention_mask": torch.tensor([[1, 1, 2, 2, 2, 0]]),  # two packed rows, one pad
        "labels": torch.tensor([[-100, 6, -100, -100, 9, -100]]),
    }
    assert count_tokens(inputs).tolist() == [5, 2]
    assert count_tokens({"input_ids": torch.ones(2, 3, dtype=torch.long)}).tolist() == [6, 0]


def test_packed_rows_without_a_mask_count_all_but_the_edge_padding():
    """Two rows (3 and 4 tokens) packed into 10 slots and padded as Axolotl 0.19's collator pads them: pad
    token ids, no labels, and position_ids continuing as a range (a dummy row), so positions cannot tell
    padding."""
    pad = 0
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, pad, pad, pad]])
    labels = torch.tensor([[-100, 6, 7, -100, -100, 10, 11, -100, -100, -100]])
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0, 1, 2]])
    inputs = {"input_ids": ids, "labels": labels, "position_ids": positions}
    assert count_tokens(inputs, pad_token_id=pad).tolist() == [7, 4]
    # left padding, and a trained EOS that is also the pad token, which is real
    left = {"input_ids": ids.flip(-1), "labels": labels.flip(-1)}
    assert count_tokens(left, pad_token_id=pad).tolist() == [7, 4]
    eos_is_pad = {
        "input_ids": torch.tensor([[5, 6, pad, pad, pad]]),
        "labels": torch.tensor([[-100, 6, pad, -100, -100]]),
    }
    assert count_tokens(eos_is_pad, pad_token_id=pad).tolist() == [3, 2]
    # no pad token known: every slot; a mask, when there is one, wins
    assert count_tokens(inputs).tolist() == [10, 4]
    assert count_tokens(
        {**inputs, "attention_mask": torch.tensor([[1, 1, 1, 2, 2, 2, 2, 2, 0, 0]])}, pad
    ).tolist() == [8, 4]


def test_mfu_is_one_at_the_peak():
    n = 68_710_000_000
    assert mfu(312e12 / (6 * n), n, 312.0) == pytest.approx(1.0)
    # docs/gpu-memory.md's H100 figure: 910 tok/s at 790 TFLOP/s is about 47.5 %.
    assert mfu(910, n, 790.0) == pytest.approx(0.475, abs=0.001)


def test_steps_per_epoch_counts_a_short_last_accumulation():
    assert steps_per_epoch(32, 4) == 8
    assert steps_per_epoch(33, 4) == 9


def test_step_clock_leaves_out_the_first_step():
    clock = StepClock(start=100.0)
    assert clock.seconds_per_step() is None
    clock.tick(110.0)  # first step: 10 s of one-off costs
    assert clock.seconds_per_step() == 10.0
    for t in (112.0, 114.0, 116.0):
        clock.tick(t)
    assert clock.seconds_per_step() == 2.0


def test_rate_over_an_empty_interval_is_none():
    assert rate(10, 0, 5.0, 5.0) is None
    assert rate(10, 0, 5.0, 0.0) == 2.0
