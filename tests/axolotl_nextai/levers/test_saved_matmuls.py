"""nextai_saved_matmuls on the tiny Llama loaded in NF4 with LoRA, on the CPU: the same loss and LoRA gradients
with the lever on and off (LoRA dropout on: the recompute replays its masks), a backward that recomputes every
4-bit matmul but the kept ones, every offloaded output handed back to the engine even when backward never asks
for it, and each config the lever cannot serve refused in one line naming the key."""

import importlib
import logging
import sys

import pytest
import torch
import yaml
from axolotl_launch import ROOT
from torch.utils._python_dispatch import TorchDispatchMode

from axolotl_nextai.levers.saved_matmuls import AXOLOTL_OFFLOAD, KEY, install, saved_matmuls_problems
from axolotl_nextai.plugin import NextAIPlugin

KEPT = ["gate_proj", "up_proj"]
LORA_TARGETS = ["gate_proj", "o_proj", "down_proj"]  # gate_proj kept and adapted: its LoRA matmuls still recomputed
GATE_UP = (256, 128)  # (out, in) of the tiny model's gate_proj and up_proj weights: no other projection has it


class DispatchedMatmuls(TorchDispatchMode):
    """The 4-bit matmuls dispatched while active, each by its weight's shape (out, in), and the plain ones
    (LoRA's, the head's) by count."""

    def __init__(self):
        super().__init__()
        self.shapes, self.plain = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.bitsandbytes.gemm_4bit.default:
            self.shapes.append(tuple(args[2]))
        elif func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.plain += 1
        return func(*args, **(kwargs or {}))


def qlora_step(tiny_model, kept, lora_targets=LORA_TARGETS):
    """One forward and backward of the tiny Llama in NF4 with LoRA (dropout 0.1), the lever on for `kept`:
    (loss, LoRA gradients, the matmuls backward ran)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    model = AutoModelForCausalLM.from_pretrained(tiny_model, quantization_config=qlora_quantization(), device_map="cpu")
    if kept:
        install(model, kept)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1, target_modules=lora_targets))
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would hide a wrong gradient for A
            torch.nn.init.normal_(param, std=0.1)
    model.train()
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    loss = model(input_ids=ids, labels=ids).loss
    with DispatchedMatmuls() as backward:
        loss.backward()
    grads = {name: param.grad for name, param in model.named_parameters() if param.requires_grad}
    return loss.detach(), grads, backward


@pytest.fixture(scope="module")
def runs(tiny_model):
    return {"off": qlora_step(tiny_model, None), "on": qlora_step(tiny_model, KEPT)}


def assert_same_training(run, reference):
    torch.testing.assert_close(run[0], reference[0], rtol=0, atol=0)
    assert run[1].keys() == reference[1].keys()
    for name, grad in reference[1].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(run[1][name], grad, rtol=0, atol=0, msg=name)


def test_same_loss_and_lora_gradients(runs):
    assert len(runs["off"][1]) == 4 * len(LORA_TARGETS) * 2  # lora_A and lora_B of each target in 4 layers
    assert_same_training(runs["on"], runs["off"])


def test_backward_recomputes_every_4bit_matmul_but_the_kept_ones(runs):
    recomputed, kept = runs["off"][2].shapes, runs["on"][2].shapes
    assert len(recomputed) == 4 * 7 and recomputed.count(GATE_UP) == 4 * 2  # 7 projections, 2 of them gate and up
    assert GATE_UP not in kept
    assert sorted(kept) == sorted(shape for shape in recomputed if shape != GATE_UP)


def test_lora_matmuls_of_a_kept_projection_are_still_recomputed(runs):
    assert runs["on"][2].plain == runs["off"][2].plain > 0


def test_an_output_backward_never_asks_for_is_still_handed_back(tiny_model, monkeypatch, caplog):
    """down_proj without an adapter is a layer's last matmul: torch stops the recompute before it. Axolotl's
    engine, emulated on the CPU (its CUDA copies as clones), must get every offloaded tensor back all the same."""
    offload, engines = importlib.import_module(AXOLOTL_OFFLOAD), []

    class CpuOffloadEngine(offload.SacOffloadEngine):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            engines.append(self)

        def should_offload(self, tensor):
            return True

        def pack(self, tensor, region_id):
            ref = offload._OffloadRef(region_id, tensor.device, tensor.size(), tuple(tensor.stride()),
                                      tensor.storage_offset(), self._buffer_key(tensor), cpu_tensor=tensor.clone())
            self._regions[region_id].append(ref)
            return ref

        def prefetch_region(self, region_id):
            pass

        def restore(self, ref):
            self._regions[ref.region_id].remove(ref)
            self.stats.restored_tensors += 1
            return ref.cpu_tensor

    monkeypatch.setattr(offload, "SacOffloadEngine", CpuOffloadEngine)
    with caplog.at_level(logging.INFO):
        kept = qlora_step(tiny_model, ["gate_proj", "up_proj", "down_proj"], lora_targets=["o_proj"])
    assert_same_training(kept, qlora_step(tiny_model, None, lora_targets=["o_proj"]))
    (engine,) = engines
    assert engine.max_cpu_buffer_pool_size == 4 * 3  # a pinned buffer for each kept output of a step
    assert engine.stats.restored_tensors == 4 * 3 and not any(engine._regions.values())
    assert "the first recomputed layer reuses 3 kept matmul outputs of 3 targeted" in caplog.text
    assert "1 kept matmul outputs of a layer were never used" in caplog.text


# --- Config checks: one line each, naming the key --------------------------------------------------------------

@pytest.fixture(scope="module")
def fast_recipe():
    cfg = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5-fast.yml").read_text())
    return {**cfg, KEY: KEPT}


def test_the_fast_recipe_can_keep_gate_and_up(fast_recipe):
    assert saved_matmuls_problems(fast_recipe, cuda_available=True) == []


@pytest.mark.parametrize("overrides,named", [
    ({"gradient_checkpointing": False}, "needs gradient_checkpointing: true"),
    ({"gradient_checkpointing": "offload"}, "needs gradient_checkpointing: true (got 'offload')"),
    ({"gradient_checkpointing_kwargs": {"use_reentrant": True}}, "needs non-reentrant checkpointing"),
    ({"activation_offloading": True}, "activation_offloading: hidden_states or false, not True"),
    ({"activation_offloading": "disk"}, "not 'disk'"),
    ({"selective_checkpointing": {"save": ["attention"]}}, "selective_checkpointing"),
    ({"load_in_4bit": False}, "needs load_in_4bit: true"),
    ({"nextai_dequant_chunk_mib": 64}, "nextai_dequant_chunk_mib"),
    ({"nextai_tiled_mlp_shards": 4}, "gate_proj, up_proj with nextai_tiled_mlp_shards"),
    ({KEY: ["o_proj"]}, "lora_o_kernel computes o_proj without calling the modules"),
    ({"lora_target_linear": True}, "set lora_mlp_kernel: false"),
    ({"lora_target_modules": "all-linear"}, "lora_mlp_kernel computes gate_proj, up_proj without calling"),
])
def test_a_config_the_lever_cannot_serve_is_one_line_naming_the_key(fast_recipe, overrides, named):
    problems = saved_matmuls_problems({**fast_recipe, **overrides}, cuda_available=True)
    assert len(problems) == 1 and problems[0].startswith(f"`{KEY}`") and named in problems[0], problems


@pytest.mark.parametrize("overrides,cuda_available", [
    ({KEY: ["o_proj"], "lora_o_kernel": False}, True),
    ({KEY: ["o_proj"]}, False),  # without CUDA the plugin turns the kernels off
    ({KEY: ["q_proj", "k_proj"]}, True),  # the QKV kernel needs adapters on all three: q, k, v stay modules
    ({KEY: ["q_proj"], "nextai_tiled_mlp_shards": 4}, True),  # the MLP is tiled, attention is not
])
def test_configs_the_lever_serves(fast_recipe, overrides, cuda_available):
    assert saved_matmuls_problems({**fast_recipe, **overrides}, cuda_available) == []


def test_an_axolotl_without_the_offload_engine_is_one_line_naming_the_key(fast_recipe, monkeypatch):
    monkeypatch.setitem(sys.modules, AXOLOTL_OFFLOAD, None)  # what `import` finds for a module that is not there
    (problem,) = saved_matmuls_problems(fast_recipe, cuda_available=True)
    assert problem.startswith(f"`{KEY}` needs Axolotl's selective-checkpointing offload")


def test_the_plugin_refuses_before_anything_loads():
    from axolotl_nextai.checks.config_checks import ConfigError

    cfg = {"plugins": ["axolotl_nextai.NextAIPlugin"], KEY: ["down_proj"], "load_in_4bit": True,
           "nextai_check_datasets": False}
    with pytest.raises(ConfigError, match=f"`{KEY}` changes what gradient checkpointing recomputes"):
        NextAIPlugin().register(cfg)
