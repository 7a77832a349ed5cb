"""GPU memory the run report shows: the card's size and the peaks. (The cap and the allocator's expandable
segments are levers: levers/gpu_memory_cap.py, levers/expandable_segments.py.)"""

from __future__ import annotations

import torch

# GIB is defined once, in the torch-free module recipes/generate.py imports
from axolotl_nextai.models.footprint import GIB


def device_memory_bytes(device: int = 0) -> int | None:
    """The CUDA card's total memory; None without CUDA."""
    return torch.cuda.get_device_properties(device).total_memory if torch.cuda.is_available() else None


def peak_memory_gib() -> tuple[float | None, float | None]:
    """(peak allocated, peak reserved) GiB since the last reset; (None, None) without CUDA, never zeros."""
    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB
