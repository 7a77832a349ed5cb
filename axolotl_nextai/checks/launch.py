"""What a config's checks know beyond the config: the processes it trains in, the machine, the model's shape.

The plugin builds it where training starts (`Launch.here`); `recipe_check --world-size` passes the world size
a recipe will train at, so that the same rules answer for the run that will happen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from axolotl_nextai.models.architectures import Architecture, architecture_of


@dataclass(frozen=True)
class Launch:
    world_size: int = 1  # processes training together (torchrun / accelerate's WORLD_SIZE)
    local_world_size: int = 1  # of them on this host (LOCAL_WORLD_SIZE): they share its memory
    cuda: bool = False
    device_bytes: int | None = None  # the CUDA card's memory
    host_available_bytes: int | None = None  # host memory the OS gives without swapping, on a CUDA host
    architecture: Architecture | None = None  # of `base_model`; None: not in its config.json nor the table

    @classmethod
    def here(cls, cfg: Mapping) -> Launch:
        import psutil
        import torch

        from axolotl_nextai.run.memory import device_memory_bytes

        cuda = torch.cuda.is_available()
        return cls(
            world_size=world_size(cfg),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE") or 1),
            cuda=cuda,
            device_bytes=device_memory_bytes(),
            # a laptop checking a recipe says nothing of the host that will train it: CUDA hosts only
            host_available_bytes=psutil.virtual_memory().available if cuda else None,
            architecture=architecture_of(str(cfg.get("base_model") or "")),
        )


def world_size(cfg: Mapping) -> int:
    """The processes a config trains in: its `world_size` (Axolotl's key, which `recipe_check --world-size`
    sets), else the launcher's WORLD_SIZE, else 1."""
    return int(cfg.get("world_size") or os.environ.get("WORLD_SIZE") or 1)


def several_processes(cfg: Mapping, launch: Launch) -> str | None:
    """How the config trains across processes, in the words of its keys; None for one process, unsharded."""
    if launch.world_size > 1:
        return f"a world size of {launch.world_size}"
    sharded = [key for key in ("fsdp_config", "fsdp_version", "fsdp") if cfg.get(key)]
    return f"FSDP ({', '.join(sharded)})" if sharded else None
