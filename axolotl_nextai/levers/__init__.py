"""Speed and memory levers that change no math, one module each, all in one table (`LEVERS`): the plugin
checks and installs every lever from it, and axolotl_nextai/README.md's table of levers is tested against it.
A new lever is a module whose class has the shape of `contract.Lever`, a line here and its key in args.py."""

from axolotl_nextai.levers.chunked_dequant import ChunkedDequant
from axolotl_nextai.levers.chunked_mlp import ChunkedMlp
from axolotl_nextai.levers.contract import Hook, Lever, switched_on
from axolotl_nextai.levers.cpu_embeddings import EmbeddingsOnCpu
from axolotl_nextai.levers.expandable_segments import ExpandableSegments
from axolotl_nextai.levers.fused_accumulation import FusedAccumulation
from axolotl_nextai.levers.gpu_memory_cap import GpuMemoryCap
from axolotl_nextai.levers.nf4_dequant import Nf4DequantKernel
from axolotl_nextai.levers.offload_prefetch import PrefetchOffloadedInputs
from axolotl_nextai.levers.saved_matmuls import SavedMatmuls
from axolotl_nextai.levers.tiled_mlp import TiledMlp

# In the order they install at a shared hook: the cap before anything allocates.
LEVERS: tuple[Lever, ...] = (
    GpuMemoryCap(),
    ExpandableSegments(),
    ChunkedDequant(),
    Nf4DequantKernel(),
    PrefetchOffloadedInputs(),
    SavedMatmuls(),
    EmbeddingsOnCpu(),
    TiledMlp(),
    ChunkedMlp(),
    FusedAccumulation(),
)


def at_hook(cfg, hook: Hook) -> list[Lever]:
    """The levers the config switches on that install at `hook`, in the table's order."""
    return [lever for lever in LEVERS if lever.hook == hook and switched_on(cfg, lever)]
