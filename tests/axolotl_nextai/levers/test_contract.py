"""Every lever of the table keeps the contract, one after the other on one tiny Llama in NF4 with LoRA:
installed twice it is installed once (no patch wraps one of its own kind), and uninstall gives back the same
modules and attributes, and the same loss and gradients bit for bit. (That a lever changes no math while
installed is its own test file's.) A new lever is in `LEVERS`, so it is tested here."""

from __future__ import annotations

import types

import bitsandbytes
import pytest
import torch
from axolotl.monkeypatch import checkpoint_activation_offload

from axolotl_nextai.levers import LEVERS
from axolotl_nextai.levers.contract import PATCHES

# The value each lever is switched on with, small enough that the tiny model takes every lever's own path.
SWITCHED_ON = {
    "nextai_gpu_memory_cap_gb": 0.5,
    "nextai_expandable_segments": True,
    "nextai_dequant_chunk_mib": 0.02,  # the tiny MLP weights (64 KiB in bf16) in 4 chunks
    "nextai_nf4_dequant_kernel": "triton",
    "nextai_prefetch_offloaded_inputs": True,
    "nextai_saved_matmuls": ["gate_proj", "up_proj"],
    "nextai_embeddings_on_cpu": True,
    "nextai_tiled_mlp_shards": 3,
    "nextai_mlp_chunks": 2,
    "nextai_fuse_accumulation": True,
}
CFG = {**SWITCHED_ON, "micro_batch_size": 1, "gradient_accumulation_steps": 2, "sequence_len": 24}
CUDA_ONLY = {"nextai_gpu_memory_cap_gb", "nextai_expandable_segments"}


def test_every_lever_of_the_table_is_tested_here():
    assert [lever.key for lever in LEVERS] == list(SWITCHED_ON)


@pytest.fixture(scope="module")
def qlora_model(tiny_model):
    """The tiny Llama in NF4 with LoRA (dropout off: the tiled MLP draws masks per shard), shared: each test
    leaves it as it found it, or fails."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model, quantization_config=qlora_quantization(), device_map="cpu"
    )
    torch.manual_seed(0)
    targets = ["o_proj", "gate_proj", "down_proj"]  # gate_proj both kept (saved_matmuls) and adapted
    lora = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=targets)
    model = get_peft_model(model, lora)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would hide a wrong gradient for A
            torch.nn.init.normal_(param, std=0.1)
    return model


def hook_object(lever, model, tmp_path):
    """What the plugin hands the lever's install at its hook."""
    if lever.hook == "pre_model_load":
        return None
    if lever.hook == "post_model_build":  # before the adapter: the transformers model PEFT then wraps
        return model.get_base_model()
    if lever.hook == "post_model_load":
        return model
    from transformers import Trainer, TrainingArguments

    from axolotl_nextai.levers.fused_accumulation import fused_trainer_class

    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    return fused_trainer_class(Trainer)(model=model, args=args)


def training_step(model) -> list[torch.Tensor]:
    """The loss and LoRA gradients of one gradient-checkpointed step on fixed rows."""
    checkpointing = {"use_reentrant": False}
    model.get_base_model().gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    model.train()
    model.zero_grad()
    rows = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (1, CFG["sequence_len"]), generator=rows)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return [loss.detach()] + [param.grad.clone() for param in model.parameters() if param.requires_grad]


def state(model, target) -> dict:
    """What a lever may change: every module's own attributes, parameters and buffers; bitsandbytes' matmul;
    the Trainer's attributes; the CUDA allocator's cap and settings."""
    modules = {
        name: (
            sorted(vars(module)),
            [(n, p.device, p.dtype, p.requires_grad) for n, p in module.named_parameters(recurse=False)],
            [n for n, _ in module.named_buffers(recurse=False)],
        )
        for name, module in model.named_modules()
    }
    cuda = torch.cuda.is_available()
    return {
        "modules": modules,
        "matmul_4bit": bitsandbytes.matmul_4bit,
        "dequantize_4bit": bitsandbytes.functional.dequantize_4bit,
        "offloader": checkpoint_activation_offload.CheckpointHiddenStatesOffload,
        "trainer": sorted(vars(target)) if lever_target_is_trainer(target) else None,
        "cap": torch.cuda.get_per_process_memory_fraction(0) if cuda else None,
        "allocator": torch._C._accelerator_getAllocatorSettings() if cuda else None,
    }


def lever_target_is_trainer(target) -> bool:
    from transformers import Trainer

    return isinstance(target, Trainer)


def patched_attributes(model, target) -> list:
    """(object, attribute) of every patch a lever has marked."""
    objects = [
        *model.modules(),
        bitsandbytes,
        bitsandbytes.functional,
        checkpoint_activation_offload,
        *([target] if lever_target_is_trainer(target) else []),
    ]
    return [(obj, name) for obj in objects for name in vars(obj).get(PATCHES, {})]


def kind(value):
    """What a patch of the same lever would share: a function's code, else the callable's class."""
    value = getattr(value, "__func__", value)
    return value.__code__ if isinstance(value, types.FunctionType) else type(value)


def held_callables(value) -> list:
    """The callables `value` holds: through closures, `__wrapped__`, bound methods and callable objects' own
    attributes (not into modules, whose attributes are the patches themselves)."""
    found, stack, seen = [], [value], set()
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, torch.nn.Module):
            continue
        seen.add(id(item))
        if item is not value and callable(item):
            found.append(item)
        if isinstance(item, types.MethodType):
            stack.append(item.__func__)
        elif isinstance(item, types.FunctionType):
            stack += [cell.cell_contents for cell in item.__closure__ or ()]
            stack += [item.__wrapped__] if hasattr(item, "__wrapped__") else []
        elif callable(item) and hasattr(item, "__dict__") and not isinstance(item, type):
            stack += list(vars(item).values())
    return found


@pytest.fixture(scope="module")
def reference(qlora_model):
    return training_step(qlora_model)


@pytest.mark.parametrize("lever", LEVERS, ids=lambda lever: lever.key)
def test_installed_twice_it_is_once_and_uninstall_gives_it_back(lever, qlora_model, reference, tmp_path):
    model = qlora_model
    target = hook_object(lever, model, tmp_path)
    pristine = state(model, target)
    lever.install(CFG, target)
    log = lever.install(CFG, target)
    try:
        assert log.startswith(f"{lever.key}: ")
        if lever.key not in CUDA_ONLY or torch.cuda.is_available():
            assert state(model, target) != pristine, "installed, the lever changed nothing"
        for obj, name in patched_attributes(model, target):
            patch = getattr(obj, name)
            assert kind(patch) not in map(kind, held_callables(patch)), f"{name} wraps itself"
    finally:
        lever.uninstall(target)
    assert state(model, target) == pristine
    assert patched_attributes(model, target) == []
    torch.testing.assert_close(training_step(model), reference, rtol=0, atol=0)
