"""GPU memory: the per-process cap that simulates a smaller card, the allocator's expandable segments, and the
peaks the run report shows."""

from __future__ import annotations

import torch

from axolotl_nextai.models.footprint import (  # defined once, in the torch-free module recipes/generate.py imports
    GB,
    GIB,
)


def memory_fraction(cap_gb: float, total_bytes: int) -> float:
    """The fraction of the card `torch.cuda.set_per_process_memory_fraction` needs for a `cap_gb` GB cap."""
    if cap_gb * GB > total_bytes:
        raise ValueError(
            f"nextai_gpu_memory_cap_gb: {cap_gb} GB is more than this card's {total_bytes / GB:.1f} GB; "
            "a cap can only simulate a smaller card"
        )
    return cap_gb * GB / total_bytes


def apply_memory_cap(cap_gb: float, device: int = 0) -> str:
    """Cap PyTorch's allocator on `device`; returns what was done, for the log.

    Only PyTorch's caching allocator is capped: the CUDA context and memory outside it (bitsandbytes' paged
    optimizer state is managed memory) come on top, as nvidia-smi shows.
    """
    if not torch.cuda.is_available():
        return f"nextai_gpu_memory_cap_gb: {cap_gb} GB asked, but there is no CUDA device: no cap applied"
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = memory_fraction(cap_gb, total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return f"nextai_gpu_memory_cap_gb: capped cuda:{device} at {cap_gb} GB = {fraction:.4f} of {total / GB:.1f} GB"


def device_memory_bytes(device: int = 0) -> int | None:
    """The CUDA card's total memory; None without CUDA."""
    return torch.cuda.get_device_properties(device).total_memory if torch.cuda.is_available() else None


def peak_memory_gib() -> tuple[float | None, float | None]:
    """(peak allocated, peak reserved) GiB since the last reset; (None, None) without CUDA, never zeros."""
    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def use_expandable_segments() -> str:
    """Switch PyTorch's CUDA allocator to expandable segments from here on (it can change at run time); returns
    what was done, for the log. `axolotl train` sets the same through PYTORCH_ALLOC_CONF at startup; the
    `accelerate launch -m axolotl.cli.train` entry point does not."""
    if not torch.cuda.is_available():
        return "nextai_expandable_segments: no CUDA device: nothing to do"
    # torch >= 2.9 sets allocator options through the accelerator API; torch.cuda's own name is deprecated
    set_settings = getattr(torch._C, "_accelerator_setAllocatorSettings", None) or torch.cuda.memory._set_allocator_settings
    try:
        set_settings("expandable_segments:True")
    except RuntimeError as exc:  # a speed-neutral memory lever: training goes on without it
        return f"nextai_expandable_segments: PyTorch refused it ({exc}); the allocator stays as it was"
    return "nextai_expandable_segments: PyTorch's CUDA allocator grows expandable segments (less fragmentation)"
