"""Settings that need CUDA, on a machine without it: one rule, applied to the raw config in `register(cfg)`.

The rule: without CUDA, Axolotl's LoRA kernels (Triton) are turned off, whether the recipe left them unset
(Axolotl would auto-enable them) or set them true, and one warning names the keys. The same recipe then
trains on a CPU for a smoke test and uses the kernels on a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

LORA_KERNEL_KEYS = ("lora_qkv_kernel", "lora_o_kernel", "lora_mlp_kernel", "lora_embedding_kernel")


def keys_to_disable(cfg: Mapping, cuda_available: bool) -> list[str]:
    """The LoRA kernel keys to set false: those not already false, when there is no CUDA."""
    if cuda_available:
        return []
    return [key for key in LORA_KERNEL_KEYS if cfg.get(key) is not False]
