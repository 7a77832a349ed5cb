"""Cap PyTorch's allocator per process before the model loads (`nextai_gpu_memory_cap_gb`): a 40 GB A100
simulated on a larger card.

Only PyTorch's caching allocator is capped: the CUDA context and memory outside it (bitsandbytes' paged
optimizer state is managed memory) come on top, as nvidia-smi shows.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.models.footprint import GB


def memory_fraction(cap_gb: float, total_bytes: int) -> float:
    """The fraction of the card `torch.cuda.set_per_process_memory_fraction` needs for a `cap_gb` GB cap."""
    if cap_gb * GB > total_bytes:
        raise ConfigError(cap_above_card(cap_gb, total_bytes))
    return cap_gb * GB / total_bytes


def cap_above_card(cap_gb: float, total_bytes: int) -> str:
    return (
        f"`{GpuMemoryCap.key}`: {cap_gb:g} GB is more than this card's {total_bytes / GB:.1f} GB; a cap "
        "can only simulate a smaller card: lower it or remove the key"
    )


class GpuMemoryCap:
    key = "nextai_gpu_memory_cap_gb"
    hook = "pre_model_load"
    distributed = True  # each rank caps its own GPU (`local_rank`); no collective

    def __init__(self):
        self.capped: dict[int, float] = {}  # device index -> the fraction it had before the cap

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        cap = cfg[self.key]
        if launch.device_bytes is not None and cap * GB > launch.device_bytes:
            return [cap_above_card(cap, launch.device_bytes)]
        return []

    def install(self, cfg: Mapping, target: None = None) -> str:
        cap_gb = cfg[self.key]
        if not torch.cuda.is_available():
            return f"{self.key}: {cap_gb} GB asked, but there is no CUDA device: no cap applied"
        device = cfg.get("local_rank") or 0
        total = torch.cuda.get_device_properties(device).total_memory
        fraction = memory_fraction(cap_gb, total)
        self.capped.setdefault(device, torch.cuda.get_per_process_memory_fraction(device))
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        return f"{self.key}: capped cuda:{device} at {cap_gb} GB = {fraction:.4f} of {total / GB:.1f} GB"

    def uninstall(self, target: None = None) -> None:
        for device, fraction in self.capped.items():
            torch.cuda.set_per_process_memory_fraction(fraction, device)
        self.capped.clear()
