"""Configs that break with several ranks or under FSDP, refused in one line each before anything loads.

The FSDP traps, each checked against its thread:
- `bnb_4bit_quant_storage: uint8` (bitsandbytes' own default; Axolotl's is bfloat16): FSDP can shard only
  floating storage, and QLoRA with uint8 under FSDP2 crashed or trained at loss 0 / grad_norm NaN (accelerate
  #3983).
- `fsdp_config.offload_params` with 4-bit weights: "CUDA error: invalid argument" while pinning them (Axolotl
  #2409, #2743; turning the offload off was the fix in both).
- `fp8` under FSDP without `cpu_ram_efficient_loading`: NaN loss and gradients (Axolotl #3077, a full
  fine-tune; Axolotl 0.19 itself refuses `cpu_ram_efficient_loading` with load_in_4bit under FSDP2, so a QLoRA
  recipe sets it false).
- a bitsandbytes optimizer (paged / 8-bit AdamW, Lion, RMSprop, AdEMAMix) under FSDP2: its update kernel has
  no rule for sharded (DTensor) parameters; the first optimizer step fails with "Operator
  bitsandbytes.optimizer_update_32bit.default does not have a sharding strategy registered" (seen here, on the
  CPU; Axolotl 0.19 refuses only adamw_8bit and adamw_bnb_8bit).

Which `nextai_` levers train with several ranks is each lever's `distributed` flag (levers/contract.py); the
others are refused there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

# bitsandbytes-backed optimizers of the Trainer (transformers' trainer_optimizer._BITSANDBYTES_OPTIMIZERS)
BNB_OPTIMIZERS = {
    "adamw_bnb_8bit",
    "adamw_8bit",
    "paged_adamw_32bit",
    "paged_adamw_8bit",
    "ademamix",
    "ademamix_8bit",
    "paged_ademamix_32bit",
    "paged_ademamix_8bit",
    "lion_32bit",
    "lion_8bit",
    "paged_lion_32bit",
    "paged_lion_8bit",
    "rmsprop_bnb",
    "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit",
}
FLOAT_STORAGE = {"bfloat16", "float16", "float32"}


def uses_fsdp(cfg: Mapping) -> bool:
    return bool(cfg.get("fsdp") or cfg.get("fsdp_config"))


def fsdp_version(cfg: Mapping) -> int:
    """Axolotl's FSDP version: `fsdp_version`, else the one inside `fsdp_config`, else 1."""
    return int(cfg.get("fsdp_version") or (cfg.get("fsdp_config") or {}).get("fsdp_version") or 1)


def checkpoint_quant_storage(base_model: str) -> str | None:
    """The storage dtype of a local pre-quantized (bitsandbytes) checkpoint, which its config.json's
    `quantization_config` sets and the recipe's `bnb_config_kwargs` cannot change; None for any other
    model."""
    config = Path(base_model).expanduser() / "config.json"
    try:
        quantization = json.loads(config.read_text()).get("quantization_config") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if quantization.get("quant_method") != "bitsandbytes":
        return None
    return str(quantization.get("bnb_4bit_quant_storage") or "uint8")


def fsdp_problems(cfg: Mapping) -> list[str]:
    """The FSDP traps of the module docstring that `cfg` falls into, one line each; [] without FSDP."""
    if not uses_fsdp(cfg):
        return []
    fsdp_config = cfg.get("fsdp_config") or {}
    four_bit = bool(cfg.get("load_in_4bit"))
    problems = []
    prequantized = checkpoint_quant_storage(str(cfg.get("base_model") or ""))
    storage = prequantized or str(
        (cfg.get("bnb_config_kwargs") or {}).get("bnb_4bit_quant_storage", "bfloat16")
    )
    if four_bit and storage.removeprefix("torch.") not in FLOAT_STORAGE:
        where = (
            f"base_model {cfg['base_model']} is pre-quantized with bnb_4bit_quant_storage {storage} (its "
            "config.json decides, not bnb_config_kwargs)"
            if prequantized
            else f"bnb_config_kwargs.bnb_4bit_quant_storage: {storage}"
        )
        problems.append(
            f"{where} under FSDP: the 4-bit weights must be stored in the training dtype (bfloat16) to "
            "be sharded; with uint8 QLoRA trained at loss 0 / NaN (accelerate #3983)"
        )
    if four_bit and (fsdp_config.get("offload_params") or fsdp_config.get("fsdp_offload_params")):
        problems.append(
            'fsdp_config.offload_params: true with 4-bit weights fails with "CUDA error: invalid '
            'argument" (Axolotl #2409, #2743); set it false'
        )
    if cfg.get("fp8") and not (
        fsdp_config.get("cpu_ram_efficient_loading") or fsdp_config.get("fsdp_cpu_ram_efficient_loading")
    ):
        problems.append(
            "fp8 under FSDP without fsdp_config.cpu_ram_efficient_loading trains at NaN loss (Axolotl #3077)"
        )
    optimizer = cfg.get("optimizer")
    if fsdp_version(cfg) == 2 and optimizer in BNB_OPTIMIZERS:
        problems.append(
            f"optimizer: {optimizer} is a bitsandbytes optimizer, whose update has no rule for FSDP2's "
            'sharded parameters ("Operator bitsandbytes.optimizer_update_32bit.default does not have a '
            "sharding strategy registered\" at the first step); use adamw_torch (LoRA's states are small)"
        )
    return problems


def rows_per_step(cfg: Mapping, world_size: int) -> int:
    """Rows (or packs) one optimizer step trains over all ranks: micro-batch x accumulation x ranks."""
    return (cfg.get("micro_batch_size") or 1) * (cfg.get("gradient_accumulation_steps") or 1) * world_size
