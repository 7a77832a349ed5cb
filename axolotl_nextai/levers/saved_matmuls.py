"""Outputs of chosen 4-bit matmuls kept from a checkpointed layer's forward for its recompute
(`nextai_saved_matmuls`).

With gradient checkpointing, backward runs each decoder layer's forward again to rebuild what the layer's
backward needs: a third of a QLoRA step's matmul FLOPs. The 4-bit base weights are frozen and their matmuls
save nothing for backward (bitsandbytes keeps the packed weight on its ctx), so what the recompute needs of a
base matmul is only its output, as the input of the next op (SwiGLU needs gate_proj's and up_proj's;
down_proj's LoRA needs their product). Here the forward copies the chosen projections' outputs to pinned CPU
memory on a side stream, and the recompute takes them back (the layer below's are prefetched while this one
runs) instead of dequantizing and multiplying again. Llama-2-70B at 4 packs x 1,024 tokens: gate_proj +
up_proj + down_proj are 82 % of a layer's matmul FLOPs; gate_proj's and up_proj's outputs are 470 MB a layer,
37.6 GB a micro-step over PCIe each way (~55 GB/s on PCIe 5; on PCIe 4 the forward waits for the copies), and
down_proj's costs nothing (below).

The gradients are unchanged: non-reentrant checkpointing backpropagates through the nodes of the first forward
and takes only the tensors the recompute saves, and a kept output is the value the recompute would have
computed. The module's forward is replaced, not the dispatcher's view of it: no TorchDispatchMode (which
Axolotl's `selective_checkpointing` uses) stops a compiled kernel such as flex attention from running
compiled.

A projection whose output only feeds the layer's output (down_proj: added to its adapter's output and to the
residual stream, and an add saves nothing for backward) needs no value in the recompute at all: nothing is
copied for it, and the recompute gets a NaN-filled placeholder, so that anything that did read it would show
as NaN gradients rather than train on a wrong value. The recompute runs up to the last tensor the layer's
backward needs (down_proj's LoRA input), and the layer's recomputed output is thrown away. That is 5.4 GB a
step less over PCIe each way than keeping down_proj's output, for the same FLOPs saved.

Axolotl's fused LoRA kernels compute their projections without calling the modules, so nothing would be kept
for them: a projection one of them computes is refused (`SavedMatmuls.problems`); PEFT's own LoRA forward
calls its base layer and adds the adapter to a copy of the output. Outputs kept by a forward whose backward
never ran are dropped at the next forward, with one warning.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from axolotl.utils.logging import get_logger

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.checks.memory_budget import kept_outputs_problems
from axolotl_nextai.levers.contract import patch, unpatch_modules
from axolotl_nextai.models.footprint import LAYER_OUTPUT_PROJECTIONS

LOG = get_logger(__name__)
KEY = "nextai_saved_matmuls"
# The projections each of Axolotl's fused LoRA kernels computes, when every one of them carries an adapter.
LORA_KERNELS = {
    "lora_qkv_kernel": ("q_proj", "k_proj", "v_proj"),
    "lora_o_kernel": ("o_proj",),
    "lora_mlp_kernel": ("gate_proj", "up_proj", "down_proj"),
}
MLP_PROJECTIONS = LORA_KERNELS["lora_mlp_kernel"]
# forward copies in flight before the compute stream waits for the oldest (bounds GPU memory)
COPIES_AHEAD = 2


def adapted(cfg: Mapping, projection: str) -> bool:
    """Whether the config puts a LoRA adapter on this projection (a regex target is not evaluated: a kernel it
    lets through keeps nothing, and the log then lacks the first recomputed layer's line)."""
    targets = cfg.get("lora_target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    return bool(cfg.get("lora_target_linear")) or "all-linear" in targets or projection in targets


def in_recompute() -> bool:
    """A non-reentrant checkpoint's recompute, run by backward to rebuild what a layer saved (its own
    saved-tensor hooks are on top): everything it computes but the saved tensors is thrown away. Not a
    reentrant checkpoint's recompute, whose graph backward runs through."""
    hooks = torch._C._autograd._top_saved_tensors_default_hooks(False)
    return hooks is not None and getattr(hooks[0], "__qualname__", "").startswith("_recomputation_hook.")


@dataclass
class Kept:
    """One kept output: the tensor itself on a CPU; on CUDA a view of a pinned buffer, and its way back."""

    value: torch.Tensor
    pinned: torch.Tensor | None = None  # the pooled buffer `value` views
    copied: torch.cuda.Event | None = None
    on_device: torch.Tensor | None = None
    fetched: torch.cuda.Event | None = None


class PinnedPool:
    """Pinned CPU buffers (bytes) reused across micro-steps: pinning tens of GB anew every step would cost
    seconds. A buffer goes back once the copy reading it has finished; the smallest free one that fits is
    taken."""

    def __init__(self, pin_memory: bool = True):
        self.pin_memory = pin_memory
        self.free: list[torch.Tensor] = []
        self.returning: list[tuple[torch.Tensor, torch.cuda.Event]] = []

    def take(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A buffer, and a view of it with `like`'s shape and dtype."""
        still_copying = []
        for buf, event in self.returning:
            if event.query():
                self.free.append(buf)
            else:
                still_copying.append((buf, event))
        self.returning = still_copying
        nbytes = like.numel() * like.element_size()
        fitting = [i for i, buf in enumerate(self.free) if buf.numel() >= nbytes]
        if fitting:  # tensors compare elementwise: pick and remove by position
            buf = self.free.pop(min(fitting, key=lambda i: self.free[i].numel()))
        else:
            buf = torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.pin_memory)
        return buf, buf[:nbytes].view(like.dtype).view(like.shape)

    def give_back(self, buf: torch.Tensor, done: torch.cuda.Event) -> None:
        self.returning.append((buf, done))


class OutputStash:
    """Per decoder layer, the kept outputs of its chosen projections in the order the forward ran them."""

    def __init__(self, per_layer: int):
        self.per_layer = per_layer
        self.layers: dict[int, deque[Kept]] = defaultdict(deque)
        self.pool = PinnedPool()
        self.in_flight: deque[torch.cuda.Event] = deque()
        self.stream: torch.cuda.Stream | None = None
        self.last_layer, self.recomputed, self.warned_unused, self.reported = -1, False, False, False

    def keep(self, layer: int, output: torch.Tensor) -> None:
        if self.recomputed or layer < self.last_layer:  # a new forward: what the last one left is stale
            self.drop_leftovers()
        self.last_layer, self.recomputed = layer, False
        kept = self.layers[layer]
        if len(kept) >= self.per_layer:  # left by a forward whose backward never came
            self.warn_unused(len(kept))
            self.drop(kept)
        if not output.is_cuda:
            kept.append(Kept(output))
            return
        compute = torch.cuda.current_stream()
        self.stream = self.stream or torch.cuda.Stream()
        self.stream.wait_stream(compute)
        with torch.cuda.stream(self.stream):
            pinned, value = self.pool.take(output)
            value.copy_(output, non_blocking=True)
        output.record_stream(self.stream)  # its memory is not reused before the copy has read it
        copied = self.stream.record_event()
        kept.append(Kept(value, pinned, copied))
        self.in_flight.append(copied)
        while len(self.in_flight) > COPIES_AHEAD:
            compute.wait_event(self.in_flight.popleft())

    def drop(self, kept: deque[Kept]) -> None:
        for entry in kept:
            if entry.copied is not None:
                self.pool.give_back(entry.pinned, entry.fetched or entry.copied)
        kept.clear()

    def warn_unused(self, unused: int) -> None:
        if unused and not self.warned_unused:
            self.warned_unused = True
            LOG.warning(
                f"{KEY}: {unused} kept outputs were left by a forward whose backward never ran (a forward "
                "with gradients on and no backward, or a step that failed): dropped, not reused"
            )

    def drop_leftovers(self) -> None:
        self.warn_unused(sum(map(len, self.layers.values())))
        for kept in self.layers.values():
            self.drop(kept)

    def fetch(self, kept: Kept, device: torch.device) -> None:
        if kept.copied is None or kept.on_device is not None:
            return
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(kept.copied)
            kept.on_device = kept.value.to(device, non_blocking=True)
            kept.fetched = self.stream.record_event()

    def take(self, layer: int, device: torch.device) -> torch.Tensor | None:
        """The next kept output of `layer` for its recompute (None: nothing kept); prefetches the layer
        below."""
        self.recomputed = True
        kept = self.layers.get(layer)
        if not self.reported:  # the sign, in the log, that the Trainer's checkpointing reaches the stash
            self.reported = True
            LOG.info(
                f"{KEY}: the first recomputed layer takes {len(kept or ())} kept outputs of {self.per_layer} "
                "targeted instead of computing them"
            )
        if not kept:
            return None
        if len(kept) == self.per_layer:  # this layer's recompute begins: backward needs the layer below next
            for below in self.layers.get(layer - 1, ()):
                self.fetch(below, device)
        entry = kept.popleft()
        if entry.copied is None:
            return entry.value
        self.fetch(entry, device)
        compute = torch.cuda.current_stream()
        compute.wait_event(entry.fetched)
        entry.on_device.record_stream(compute)
        self.pool.give_back(entry.pinned, entry.fetched)
        return entry.on_device


class ReplayedOutput(torch.autograd.Function):
    """y = x W^T for a frozen 4-bit W, its value taken from the first forward instead of computed again."""

    @staticmethod
    def forward(ctx, x, linear):
        # the 4-bit Params4bit: nothing saved through autograd, as bitsandbytes does
        ctx.weight = linear.weight
        return linear.replayed_output

    @staticmethod
    def backward(ctx, grad):
        # Reached only by reentrant checkpointing, which backpropagates through the recompute's own graph.
        from bitsandbytes.functional import dequantize_4bit

        weight = dequantize_4bit(ctx.weight.data, ctx.weight.quant_state).to(grad.dtype)
        return grad @ weight, None


def base_linear(module: torch.nn.Module) -> torch.nn.Module:
    """The 4-bit linear a projection computes with (PEFT's LoRA layer wraps it as `base_layer`)."""
    return getattr(module, "base_layer", module)


def replayed(x: torch.Tensor, linear: torch.nn.Module, output: torch.Tensor) -> torch.Tensor:
    """`output` standing in for the linear's recomputed x W^T."""
    linear.replayed_output = output
    try:
        return ReplayedOutput.apply(x, linear)
    finally:
        del linear.replayed_output


def kept_forward(linear: torch.nn.Module, layer: int, stash: OutputStash):
    """The linear's training forward routed through the stash: keep in the first forward, take in the
    recompute."""
    compute = linear.forward

    def forward(x, *args, **kwargs):
        if not (linear.training and torch.is_grad_enabled()):
            return compute(x, *args, **kwargs)
        if in_recompute():
            kept = stash.take(layer, x.device)
            if kept is None:
                return compute(x, *args, **kwargs)
            if kept.shape != (*x.shape[:-1], linear.out_features):
                raise RuntimeError(
                    f"nextai_saved_matmuls: layer {layer}'s recompute asked for an output of shape "
                    f"{(*x.shape[:-1], linear.out_features)} where the forward kept {tuple(kept.shape)}"
                )
            return replayed(x, linear, kept)
        output = compute(x, *args, **kwargs)
        stash.keep(layer, output.detach())
        return output

    return forward


def skipped_forward(linear: torch.nn.Module):
    """The linear's forward whose recompute returns a NaN placeholder: its output only feeds the layer's
    output, which the recompute throws away (nothing is kept or copied)."""
    compute = linear.forward

    def forward(x, *args, **kwargs):
        if linear.training and torch.is_grad_enabled() and in_recompute():
            placeholder = torch.full(
                (*x.shape[:-1], linear.out_features), float("nan"), dtype=x.dtype, device=x.device
            )
            return replayed(x, linear, placeholder)
        return compute(x, *args, **kwargs)

    return forward


def targeted_modules(model: torch.nn.Module, projections: list[str]) -> dict[int, list[torch.nn.Module]]:
    """The 4-bit linear of each targeted projection, by the index of its gradient-checkpointed decoder
    layer."""
    import bitsandbytes as bnb
    from transformers import GradientCheckpointingLayer

    layers = [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]
    return {
        index: linears
        for index, layer in enumerate(layers)
        if (
            linears := [
                base_linear(module)
                for name, module in layer.named_modules()
                if name.rsplit(".", 1)[-1] in projections
                and isinstance(base_linear(module), bnb.nn.Linear4bit)
            ]
        )
    }


class SavedMatmuls:
    """`nextai_saved_matmuls`: the listed projections' outputs kept from the forward for the recompute
    (down_proj's skipped there)."""

    key = KEY
    # where Axolotl's selective_checkpointing hooks in: before the loader, PEFT's k-bit preparation and the
    # Trainer enable gradient checkpointing; PEFT's LoRA wrappers keep the routed modules as their base_layer
    hook = "post_model_build"
    # FSDP2, 2 CPU ranks: the losses of one process (tests/axolotl_nextai/run/test_multi_rank_cli.py); each
    # rank keeps its own micro-step's outputs in its host's memory (the host check counts the host's ranks)
    distributed = True

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        """Why this config's matmuls cannot be kept, one line each; [] when they can."""
        targets = set(cfg.get(KEY) or [])
        problems = []
        if cfg.get("gradient_checkpointing") is not True:
            problems.append(
                f"`{KEY}` changes what gradient checkpointing recomputes: needs gradient_checkpointing: "
                f"true (got {cfg.get('gradient_checkpointing')!r})"
            )
        if (cfg.get("gradient_checkpointing_kwargs") or {}).get("use_reentrant"):
            problems.append(
                f"`{KEY}` needs non-reentrant checkpointing: remove "
                "gradient_checkpointing_kwargs.use_reentrant or set it false"
            )
        offloading = cfg.get("activation_offloading")
        if offloading not in (None, False, "hidden_states"):
            problems.append(
                f"`{KEY}` works with activation_offloading: hidden_states or false, not {offloading!r}, "
                "whose offloader replaces gradient checkpointing's recompute"
            )
        if not cfg.get("load_in_4bit"):
            problems.append(f"`{KEY}` keeps bitsandbytes' 4-bit matmuls: needs load_in_4bit: true")
        tiled = sorted(targets & set(MLP_PROJECTIONS))
        if tiled and cfg.get("nextai_tiled_mlp_shards") is not None:
            problems.append(
                f"`{KEY}`: {', '.join(tiled)} with nextai_tiled_mlp_shards: the tiled MLP recomputes its "
                "shards in its own backward anyway, and bringing a layer's kept outputs back at once "
                "undoes the tiling; keep one"
            )
        for kernel, projections in LORA_KERNELS.items():
            fused = sorted(targets & set(projections))
            # Axolotl turns an unset one on for an adapter
            kernel_on = launch.cuda and cfg.get(kernel) is not False
            if fused and kernel_on and cfg.get("adapter") and all(adapted(cfg, p) for p in projections):
                problems.append(
                    f"`{KEY}`: {kernel} computes {', '.join(fused)} without calling the modules, so "
                    f"nothing would be kept; set {kernel}: false"
                )
        if launch.architecture is not None and launch.host_available_bytes is not None:
            problems += kept_outputs_problems(
                cfg, launch.architecture, launch.host_available_bytes, launch.local_world_size
            )
        return problems

    def install(self, cfg: Mapping, model: torch.nn.Module) -> str:
        """Keep the targeted projections' outputs, and make every `gradient_checkpointing_enable` call on
        `model` (Axolotl's loader, PEFT's k-bit preparation, the Trainer at train start) non-reentrant, whose
        backward runs through the first forward's nodes. A LoRA wrapper added later keeps each routed linear
        as its `base_layer`."""
        self.uninstall(model)
        projections = sorted(set(cfg[KEY]))
        kept = [name for name in projections if name not in LAYER_OUTPUT_PROJECTIONS]
        skipped = [name for name in projections if name in LAYER_OUTPUT_PROJECTIONS]
        targets = targeted_modules(model, projections)
        if not targets:
            raise ConfigError(
                f"`{KEY}`: no gradient-checkpointed decoder layer has a 4-bit {', '.join(projections)}"
            )
        kept_targets = targeted_modules(model, kept) if kept else {}
        stash = OutputStash(per_layer=max(map(len, kept_targets.values()), default=0))
        for layer, linears in kept_targets.items():
            for linear in linears:
                patch(linear, "forward", kept_forward(linear, layer, stash), KEY)
        for linears in (targeted_modules(model, skipped) if skipped else {}).values():
            for linear in linears:
                patch(linear, "forward", skipped_forward(linear), KEY)
        enable = model.gradient_checkpointing_enable

        def enable_non_reentrant(gradient_checkpointing_kwargs=None, **kwargs):
            checkpoint_kwargs = {**(gradient_checkpointing_kwargs or {}), "use_reentrant": False}
            return enable(gradient_checkpointing_kwargs=checkpoint_kwargs, **kwargs)

        patch(model, "gradient_checkpointing_enable", enable_non_reentrant, KEY)
        first = next(iter(targets.values()))[0]
        where = "pinned CPU memory" if first.weight.device.type == "cuda" else "where they are: not on CUDA"
        done = [f"{', '.join(kept)} kept from the forward ({where})"] if kept else []
        done += (
            [f"{', '.join(skipped)} skipped (its output only feeds the layer's output)"] if skipped else []
        )
        return f"{KEY}: not recomputed in {len(targets)} layers: {'; '.join(done)}"

    def uninstall(self, model: torch.nn.Module) -> None:
        """The projections' own forwards and the model's own `gradient_checkpointing_enable` back
        (checkpointing already enabled stays non-reentrant until enabled again)."""
        unpatch_modules(model, KEY)
