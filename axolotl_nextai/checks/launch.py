"""What a config's checks know beyond the config: how many processes it runs in, the machine, the model's shape.

The plugin builds it where training starts (`Launch.here`); `recipe_check` builds the one a recipe targets (an
A100, the world size it is given), so that the same rules answer for the machine that will train.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from axolotl_nextai.models.architectures import Architecture, architecture_of


@dataclass(frozen=True)
class Launch:
    world_size: int = 1  # processes training together (torchrun / accelerate's WORLD_SIZE)
    cuda: bool = False
    device_bytes: int | None = None  # the CUDA card's memory
    host_available_bytes: int | None = None  # host memory the OS can give without swapping, on a CUDA machine
    architecture: Architecture | None = None  # of `base_model`; None when neither its config.json nor the table has it

    @classmethod
    def here(cls, cfg: Mapping) -> Launch:
        """This process's launch: the world size from `world_size` in the config, else WORLD_SIZE."""
        import psutil
        import torch

        from axolotl_nextai.run.memory import device_memory_bytes

        cuda = torch.cuda.is_available()
        return cls(world_size=world_size(cfg), cuda=cuda, device_bytes=device_memory_bytes(),
                   # checking on a laptop says nothing of the host that will train: only a CUDA host is measured
                   host_available_bytes=psutil.virtual_memory().available if cuda else None,
                   architecture=architecture_of(str(cfg.get("base_model") or "")))


def world_size(cfg: Mapping) -> int:
    """The processes a config trains in: its `world_size` (what Axolotl sets, and `recipe_check --world-size`),
    else the launcher's WORLD_SIZE, else 1."""
    return int(cfg.get("world_size") or os.environ.get("WORLD_SIZE") or 1)


def distributed(cfg: Mapping, launch: Launch) -> str | None:
    """How the config trains across processes, in the words of its key, or None for one process unsharded."""
    if launch.world_size > 1:
        return f"a world size of {launch.world_size}"
    sharded = [key for key in ("fsdp_config", "fsdp_version", "fsdp") if cfg.get(key)]
    return f"FSDP ({', '.join(sharded)})" if sharded else None
