"""PyTorch's CUDA allocator on expandable segments from before the model loads (`nextai_expandable_segments`):
less memory lost to fragmentation under a tight cap. `axolotl train` sets the same through PYTORCH_ALLOC_CONF
at startup; the `accelerate launch -m axolotl.cli.train` entry point does not. It can change at run time."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from axolotl_nextai.checks.launch import Launch

SETTING = "expandable_segments"


def allocator_settings():
    """(get, set) of the CUDA allocator's settings string: torch >= 2.9 has them in the accelerator API and
    deprecates torch.cuda's own setter (which has no getter: what was there before then reads as unset)."""
    get = getattr(torch._C, "_accelerator_getAllocatorSettings", lambda: "")
    put = getattr(torch._C, "_accelerator_setAllocatorSettings", None)
    return get, put or torch.cuda.memory._set_allocator_settings


class ExpandableSegments:
    key = "nextai_expandable_segments"
    hook = "pre_model_load"
    distributed = True  # each rank's own allocator setting; no collective

    def __init__(self):
        self.before: bool | None = None  # whether they were on before `install`; None: not installed

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        return []

    def install(self, cfg: Mapping, target: None = None) -> str:
        if not torch.cuda.is_available():
            return f"{self.key}: no CUDA device: nothing to do"
        get, put = allocator_settings()
        before = f"{SETTING}:True" in get()
        try:
            put(f"{SETTING}:True")
        except RuntimeError as exc:  # a speed-neutral memory lever: training goes on without it
            return f"{self.key}: PyTorch refused it ({exc}); the allocator stays as it was"
        self.before = before if self.before is None else self.before
        return f"{self.key}: PyTorch's CUDA allocator grows expandable segments (less fragmentation)"

    def uninstall(self, target: None = None) -> None:
        if self.before is not None:
            allocator_settings()[1](f"{SETTING}:{self.before}")
            self.before = None
