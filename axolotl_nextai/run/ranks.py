"""Several ranks (processes) of one run: which rank this is, how the ranks agree at a step's end, and how a
machine without CUDA runs them.

`accelerate launch --multi_gpu --num_processes N` (torch's elastic agent) starts the N ranks; on a GPU they
join one NCCL process group. Two things keep a CPU-only machine (CI, this repository's tests) from doing the
same with Axolotl 0.19 and accelerate 1.13, and `join_cpu_ranks` fixes them before anything loads:
- accelerate forms a gloo group of CPU ranks only when told so (`ACCELERATE_USE_CPU`); without it each rank
  would train alone, N copies of the run writing one output folder;
- Axolotl's `normalize_config` gives every rank `device_map = {"": LOCAL_RANK}` whenever the world size is not
  1, an accelerator index, on which transformers' loader fails ("Cannot access accelerator device"); its FSDP2
  mesh is a "cuda" mesh; and accelerate quietly trains CPU ranks with DDP when FSDP is asked for. Three marked
  patches (`cpu_patches`, installed only without CUDA, undone by `uninstall_cpu_patches`) put the CPU in their
  place.

`StepAgreement` is the one collective the plugin adds: at every optimizer step's end, each rank's wish to stop
(a signal reached it, its time budget is spent) is combined over a separate gloo group, so all ranks stop
after the same step and save one checkpoint. A rank that died makes that collective fail at once (its socket
closed) or after `timeout` (its host gone): the survivor ends with one line (`PeerLost`) instead of waiting
forever.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from data_builders.errors import first_line

PATCH_MARK = "_nextai_cpu_ranks"  # set on a patched method: installed once, undone by uninstall_cpu_patches
DEFAULT_TIMEOUT_S = 1800  # torch's and the Trainer's (`ddp_timeout`) default for a process group


def world_size() -> int:
    """Ranks in this run, as the launcher says (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_world_size() -> int:
    """Ranks on this host (one a GPU), as the launcher says (1 without a launcher)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def join_cpu_ranks() -> str | None:
    """On a machine without CUDA started with several ranks: join them in one gloo group and load the model on
    the CPU (see the module docstring). Returns what was done, for the log; None when there is nothing to
    do."""
    if world_size() == 1 or torch.cuda.is_available():
        return None
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_CPU"] = "true"  # read by the Trainer's arguments and accelerate's state
    # Now, not at the Trainer: Axolotl orders its data preparation with barriers on this state.
    PartialState(cpu=True)
    install_cpu_patches()
    return (
        f"axolotl-nextai: no CUDA device: {world_size()} ranks joined one gloo process group, model "
        "loaded on the CPU"
    )


def cpu_patches() -> list[tuple[type, str, object]]:
    """(class, method name, replacement) of the marked patches that let ranks without CUDA train as on GPUs:
    - Axolotl's `ModelLoader._set_device_map_config`: an accelerator index left in the device map becomes
      "cpu";
    - accelerate's `ParallelismConfig.build_device_mesh`: Axolotl asks for a "cuda" mesh; a "cpu" one instead;
    - accelerate's `AcceleratorState.__init__`: accelerate 1.13 applies FSDP only to accelerator ranks and
      would silently train CPU ranks with DDP; with an FSDP plugin they get FSDP."""
    from accelerate.parallelism_config import ParallelismConfig
    from accelerate.state import AcceleratorState, DistributedType
    from axolotl.loaders.model import ModelLoader

    set_device_map_config = ModelLoader._set_device_map_config
    build_device_mesh = ParallelismConfig.build_device_mesh
    init_state = AcceleratorState.__init__

    def cpu_device_map(self):
        set_device_map_config(self)
        if isinstance(self.model_kwargs.get("device_map"), dict):
            self.model_kwargs["device_map"] = "cpu"

    def cpu_device_mesh(self, device_type):
        return build_device_mesh(self, "cpu" if device_type == "cuda" else device_type)

    def fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
        init_state(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    return [
        (ModelLoader, "_set_device_map_config", cpu_device_map),
        (ParallelismConfig, "build_device_mesh", cpu_device_mesh),
        (AcceleratorState, "__init__", fsdp_on_cpu),
    ]


def install_cpu_patches() -> None:
    """Install `cpu_patches`, each once (marked with PATCH_MARK, the original kept for
    `uninstall_cpu_patches`)."""
    for owner, name, replacement in cpu_patches():
        original = getattr(owner, name)
        if getattr(original, PATCH_MARK, False):
            continue
        setattr(replacement, PATCH_MARK, True)
        replacement.original = original
        setattr(owner, name, replacement)


def uninstall_cpu_patches() -> None:
    """Put the originals of `cpu_patches` back."""
    for owner, name, _ in cpu_patches():
        patched = getattr(owner, name)
        if getattr(patched, PATCH_MARK, False):
            setattr(owner, name, patched.original)


class PeerLost(RuntimeError):
    """Another rank stopped answering: its process ended or its host is unreachable."""


# How far this rank got, for the line it ends with when a rank is lost (set by the plugin's StopCallback), and
# the stop signal it received, if any (a callable: the signal handler records it at any time).
PROGRESS: dict[str, object] = {"step": None, "checkpoint": None, "stop_signal": lambda: None}


class StepAgreement:
    """Combines small per-rank values over all ranks at a step's end, on a gloo group of its own (CPU tensors:
    no GPU synchronisation, and a timeout of its own), made at its first use, which every rank reaches in the
    same order. With one rank, values pass through unchanged."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.timeout_s = timeout_s
        self.distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self._group = None

    @property
    def rank(self) -> int:
        return dist.get_rank() if self.distributed else 0

    @property
    def size(self) -> int:
        return dist.get_world_size() if self.distributed else 1

    def group(self):
        if self._group is None:
            self._group = dist.new_group(backend="gloo", timeout=timedelta(seconds=self.timeout_s))
        return self._group

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any."""
        return self.reduce([float(flag)], "max")[0] > 0

    def reduce(self, values: list[float], op: str) -> list[float]:
        """`values` combined element-wise over the ranks: op "sum" or "max"."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
        self._collective(lambda: dist.all_reduce(tensor, op=reduce_op, group=self.group()))
        return tensor.tolist()

    def gather(self, value: object) -> list[object]:
        """Every rank's `value` (picklable), in rank order."""
        if not self.distributed:
            return [value]
        out: list[object] = [None] * self.size
        self._collective(lambda: dist.all_gather_object(out, value, group=self.group()))
        return out

    def _collective(self, run) -> None:
        try:
            run()
        except RuntimeError as exc:  # gloo: "Connection closed by peer", or a timeout
            raise PeerLost(f"another rank stopped answering at a step's end ({first_line(exc)})") from None


def lost_rank_error(exc: BaseException | None) -> BaseException | None:
    """The error in `exc`'s chain that means another rank is gone, or None: ours, torch's distributed errors
    (NCCL, the store), gloo's transport errors (plain RuntimeErrors). The chain, because the launcher's
    SIGTERM often raises a second error (a DataLoader worker killed) while the first is handled."""
    while exc is not None:
        text = str(exc)
        gloo = "gloo" in text and any(
            word in text for word in ("closed by peer", "reset by peer", "Timed out")
        )
        if isinstance(exc, (PeerLost, dist.DistError)) or (isinstance(exc, RuntimeError) and gloo):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def stop_line(exc: BaseException) -> str | None:
    """The one line a rank ends with when another rank is gone, or when a stop signal ended it mid-step (the
    elastic agent stops every rank when one fails; its SIGTERM also ends DataLoader workers, whose loss then
    raises); None for any other error."""
    lost, received = lost_rank_error(exc), PROGRESS["stop_signal"]()
    if lost is None and received is None:
        return None
    rank, size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, world_size())
    if lost is not None:
        why = (
            "another rank is gone (its process ended or its host is unreachable; the launcher's "
            "report names it)"
        )
    else:
        why = (
            f"{received} reached it mid-step (with several ranks torch's elastic agent sends it to all when "
            "one fails; its report names that rank)"
        )
    checkpoint = PROGRESS["checkpoint"]
    resume = f"resume with resume_from_checkpoint: {checkpoint}" if checkpoint else "no checkpoint was saved"
    return (
        f"axolotl-nextai: rank {rank} of {size} stops: {why}, after step {PROGRESS['step']}: "
        f"{first_line(lost or exc)}; {resume}"
    )


def end_in_one_line_when_a_rank_is_lost() -> None:
    """Make a lost rank, or a stop signal that ended the step, end this rank with one line (exit 1) instead of
    a traceback, and at once: interpreter shutdown could block in a collective with the dead rank. Any other
    exception goes to the previous hook."""
    previous = sys.excepthook
    if getattr(previous, "one_line_lost_rank", False):
        return

    def hook(kind, exc, tb):
        line = stop_line(exc)
        if line is None:
            previous(kind, exc, tb)
            return
        # torch's own hook, installed later, captures sys.stderr while it calls this one: write past it
        print(line, file=sys.__stderr__, flush=True)
        os._exit(1)

    hook.one_line_lost_rank = True
    sys.excepthook = hook
