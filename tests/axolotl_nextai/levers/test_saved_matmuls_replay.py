"""nextai_saved_matmuls on a tiny NF4 Llama with LoRA (o_proj, down_proj) under non-reentrant gradient
checkpointing: the same loss and LoRA gradients as plain checkpointing, and the kept projections' 4-bit matmuls
run once (the forward) instead of twice, the others still twice."""

from collections import Counter

import pytest
import torch
from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

from axolotl_nextai.levers import saved_matmuls

LAYERS = 2


def tiny_qlora(tmp_path, lora_dropout: float, device: str):
    from peft import LoraConfig, get_peft_model

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    model = LlamaForCausalLM.from_pretrained(tmp_path, quantization_config=quant, dtype=torch.float32, device_map=device)
    torch.manual_seed(1)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, lora_dropout=lora_dropout,
                                             target_modules=["o_proj", "down_proj"]))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model.train()


def matmul_calls(model) -> Counter:
    """How many times each 4-bit projection computed its matmul, counted by projection name."""
    calls = Counter()
    for name, module in model.named_modules():
        if name.endswith("base_layer") or name.rsplit(".", 1)[-1] in ("q_proj", "gate_proj", "up_proj"):
            linear = saved_matmuls.base_linear(module)
            if hasattr(linear, "weight") and hasattr(linear.weight, "quant_state"):
                original = type(linear).forward

                def counted(x, *args, _linear=linear, _name=name, _original=original, **kwargs):
                    calls[_name.replace(".base_layer", "").rsplit(".", 1)[-1]] += 1
                    return _original(_linear, x, *args, **kwargs)

                linear.forward = counted
    return calls


def step(model, seed: int = 7):
    torch.manual_seed(seed)
    ids = torch.randint(0, 64, (2, 12)).to(model.device)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return loss.detach(), grads


# on CUDA (the GPU machine runs this file first): the outputs travel through pinned memory and a side stream
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lora_dropout", [0.0, 0.3])
def test_same_loss_and_gradients_and_no_recomputed_matmul(tmp_path, lora_dropout, device):
    plain = tiny_qlora(tmp_path / "plain", lora_dropout, device)
    plain_calls = matmul_calls(plain)
    expected = step(plain)

    model = tiny_qlora(tmp_path / "kept", lora_dropout, device)
    calls = matmul_calls(model)  # counts under the lever: installed on top of the counters
    assert saved_matmuls.install(model, ["gate_proj", "up_proj", "down_proj"]) == 3 * LAYERS
    # bit for bit on the CPU; CUDA's attention backward accumulates in a varying order
    exact = {"rtol": 0, "atol": 0} if device == "cpu" else {"rtol": 1e-4, "atol": 1e-6}
    for _ in range(2):  # a second step reuses the stash as the first left it
        calls.clear()
        loss, grads = step(model)
        torch.testing.assert_close(loss, expected[0], **exact)
        assert grads.keys() == expected[1].keys() and len(grads) == 4 * LAYERS
        for name in grads:
            torch.testing.assert_close(grads[name], expected[1][name], **exact)
    # plain checkpointing: every matmul twice (forward + recompute); kept: once; q_proj (not kept) still twice
    assert plain_calls["gate_proj"] == plain_calls["q_proj"] == 2 * LAYERS
    assert calls["gate_proj"] == calls["up_proj"] == calls["down_proj"] == LAYERS
    assert calls["q_proj"] == 2 * LAYERS
