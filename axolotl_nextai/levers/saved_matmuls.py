"""Gradient checkpointing that keeps chosen projections' 4-bit matmuls from the forward (`nextai_saved_matmuls`).

A checkpointed decoder layer runs its forward twice: once in the forward pass, keeping only its input, and again
in backward to rebuild what its gradients need. That recompute is a third of a QLoRA step's matmul FLOPs. Some
matmul outputs are cheap to keep instead: Llama-2-70B at 4 packs x 1,024 tokens, gate_proj's and up_proj's outputs
are 2 x 4,096 x 28,672 bf16 = 470 MB a layer (37.6 GB for 80 layers in pinned CPU memory, copied over PCIe during
the forward and back during backward), and they are 55 % of a layer's matmul FLOPs. down_proj's output is the
cheapest per FLOP (8,192 wide for K = 28,672: 5.4 GB a micro-step for 27 % of the FLOPs). The copies hide behind
compute only while PCIe keeps up: 470 MB is ~9 ms at PCIe 5's ~50 GB/s against ~9-15 ms of the layer's forward
matmuls on an H100; at PCIe 4's ~25 GB/s the forward waits for them.

What is kept is the output of bitsandbytes' `gemm_4bit` op, which dequantizes the weight and multiplies in one
dispatcher call: a kept projection skips both its dequantization and its matmul in the recompute. The selection is
torch's selective checkpointing (a policy per dispatched op) with Axolotl's CPU offload of the kept tensors: side
stream, pinned buffer pool, the next layer's tensors prefetched in backward. Axolotl's own `selective_checkpointing`
picks ops by name only, so it would keep every matmul of the layer, LoRA's included, and refuses matmuls with an
adapter; here forward hooks on each targeted projection mark its 4-bit matmul as the one to keep (LoRA's own
matmuls are plain ones: recomputed as before). The hooks fire again in the recompute, so the forward and the
recompute agree on which ops were kept. The values are the forward's own: the gradients are unchanged.

Axolotl's fused LoRA kernels compute their projections without calling the modules, so the hooks never see them,
and they add the adapter into the matmul's output in place (`matmul_lora` in axolotl/kernels/lora.py, behind
`lora_o_kernel`, `lora_qkv_kernel` and `lora_mlp_kernel` alike): a projection one of them computes is refused
(`saved_matmuls_problems`). PEFT's own LoRA forward adds the adapter to a copy of the base output.
"""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict
from collections.abc import Mapping
from contextlib import contextmanager

import torch
from axolotl.utils.logging import get_logger
from torch.utils._pytree import tree_leaves
from torch.utils.checkpoint import CheckpointPolicy

from axolotl_nextai.checks.config_checks import ConfigError

LOG = get_logger(__name__)
KEY = "nextai_saved_matmuls"
# The projections each of Axolotl's fused LoRA kernels computes, when every one of them carries an adapter.
LORA_KERNELS = {
    "lora_qkv_kernel": ("q_proj", "k_proj", "v_proj"),
    "lora_o_kernel": ("o_proj",),
    "lora_mlp_kernel": ("gate_proj", "up_proj", "down_proj"),
}
MLP_PROJECTIONS = LORA_KERNELS["lora_mlp_kernel"]
AXOLOTL_OFFLOAD = "axolotl.monkeypatch.selective_checkpointing_offload"
AXOLOTL_OFFLOAD_NAMES = ("SacOffloadEngine", "SacOffloadEngine._reap_fwd_stash", "_OffloadCachingMode",
                         "_OffloadCachedMode", "_OffloadRef")


def has_attribute(obj, dotted: str) -> bool:
    try:
        operator.attrgetter(dotted)(obj)
    except AttributeError:
        return False
    return True


def axolotl_offload():
    """Axolotl's selective-checkpointing offload module (axolotl 0.19): its engine and dispatch modes are
    private names, so another Axolotl may lack them."""
    import importlib

    try:
        module = importlib.import_module(AXOLOTL_OFFLOAD)
    except ImportError as err:
        raise ConfigError(f"`{KEY}` needs Axolotl's selective-checkpointing offload ({AXOLOTL_OFFLOAD}): {err}; "
                          f"remove `{KEY}` or use axolotl 0.19") from None
    missing = [name for name in AXOLOTL_OFFLOAD_NAMES if not has_attribute(module, name)]
    if missing:
        raise ConfigError(f"`{KEY}` needs {', '.join(missing)} from {AXOLOTL_OFFLOAD}, which this Axolotl lacks; "
                          f"remove `{KEY}` or use axolotl 0.19")
    return module


def adapted(cfg: Mapping, projection: str) -> bool:
    """Whether the config puts a LoRA adapter on this projection (a regex target is not evaluated: a kernel it
    lets through shows in the first recompute's log line)."""
    targets = cfg.get("lora_target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    return bool(cfg.get("lora_target_linear")) or "all-linear" in targets or projection in targets


def saved_matmuls_problems(cfg: Mapping, cuda_available: bool) -> list[str]:
    """Why `nextai_saved_matmuls` cannot keep this config's matmuls, one line each; [] when it can."""
    targets = set(cfg.get(KEY) or [])
    if not targets:
        return []
    problems = []
    if cfg.get("gradient_checkpointing") is not True:
        problems.append(f"`{KEY}` changes what gradient checkpointing recomputes: needs gradient_checkpointing: true "
                        f"(got {cfg.get('gradient_checkpointing')!r})")
    if (cfg.get("gradient_checkpointing_kwargs") or {}).get("use_reentrant"):
        problems.append(f"`{KEY}` needs non-reentrant checkpointing: remove gradient_checkpointing_kwargs.use_reentrant "
                        "or set it false")
    offloading = cfg.get("activation_offloading")
    if offloading not in (None, False, "hidden_states"):
        problems.append(f"`{KEY}` works with activation_offloading: hidden_states or false, not {offloading!r}, whose "
                        "offloader replaces gradient checkpointing's recompute")
    if cfg.get("selective_checkpointing"):
        problems.append(f"`{KEY}` and selective_checkpointing each give checkpointing its policy; keep one")
    if not cfg.get("load_in_4bit"):
        problems.append(f"`{KEY}` keeps bitsandbytes' 4-bit matmuls: needs load_in_4bit: true")
    if cfg.get("nextai_dequant_chunk_mib") is not None:
        problems.append(f"`{KEY}` and nextai_dequant_chunk_mib: the chunked matmul writes its output a slice at a "
                        "time, which cannot be kept; keep one")
    tiled = sorted(targets & set(MLP_PROJECTIONS))
    if tiled and cfg.get("nextai_tiled_mlp_shards") is not None:
        problems.append(f"`{KEY}`: {', '.join(tiled)} with nextai_tiled_mlp_shards: the tiled MLP recomputes its "
                        "shards in its own backward anyway, and bringing a layer's kept outputs back at once undoes "
                        "the tiling; keep one")
    for kernel, projections in LORA_KERNELS.items():
        fused = sorted(targets & set(projections))
        kernel_on = cuda_available and cfg.get(kernel) is not False  # Axolotl turns an unset one on for an adapter
        if fused and kernel_on and cfg.get("adapter") and all(adapted(cfg, p) for p in projections):
            problems.append(f"`{KEY}`: {kernel} computes {', '.join(fused)} without calling the modules, so nothing "
                            f"would be kept; set {kernel}: false")
    try:
        axolotl_offload()
    except ConfigError as err:
        problems.append(str(err))
    return problems


class KeptMatmuls:
    """What the projection hooks, the checkpoint policy and each checkpointed layer share."""

    def __init__(self, per_layer: int, engine, offload) -> None:
        import bitsandbytes  # noqa: F401  (registers torch.ops.bitsandbytes)

        self.kept_op = torch.ops.bitsandbytes.gemm_4bit.default
        self.per_layer, self.engine, self.offload = per_layer, engine, offload
        self.inside_target = False  # set while a targeted projection runs, in the forward and in the recompute
        self.regions = itertools.count()  # one per checkpoint call, as Axolotl numbers them for its prefetch
        self.reported = self.warned_unused = False

    def hook(self, projection: torch.nn.Module) -> None:
        projection.register_forward_pre_hook(lambda *_: setattr(self, "inside_target", True))
        # always_call: a recompute that stops early (torch's early stop) still clears the flag
        projection.register_forward_hook(lambda *_: setattr(self, "inside_target", False), always_call=True)

    def policy(self, ctx, op, *args, **kwargs) -> CheckpointPolicy:
        """Keep a targeted projection's 4-bit matmul; recompute everything else."""
        if self.inside_target and op is self.kept_op:
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    def context_fn(self):
        """torch.utils.checkpoint's `context_fn`: Axolotl's offloading dispatch modes, one region per call."""
        region, storage = next(self.regions), defaultdict(list)
        return (self.offload._OffloadCachingMode(self.policy, storage, self.engine, region),
                self.recompute(self.offload._OffloadCachedMode(self.policy, storage, self.engine, region), storage))

    @contextmanager
    def recompute(self, mode, storage: dict):
        """Axolotl's recompute mode, then hands back whatever the recompute left unused: torch stops a recompute
        once everything backward needs exists, so a layer's last matmul (down_proj without an adapter) is never
        asked for, and its offloaded copy would otherwise hold pinned and GPU memory for good."""
        # the forward is over: the GPU tensors Axolotl's engine holds until their copies finish (the last two of
        # each forward, 470 MB at 4 packs) need not wait for the next forward to go
        if self.engine._fwd_stash:
            self.engine._reap_fwd_stash(float("inf"))
        if not self.reported:
            self.reported = True
            kept = sum(len(entries) for entries in storage.values())
            report = LOG.info if kept == self.per_layer else LOG.warning
            report(f"{KEY}: the first recomputed layer reuses {kept} kept matmul outputs of {self.per_layer} targeted")
        try:
            with mode:
                yield
        finally:
            unused = [leaf for entries in storage.values() for leaf in tree_leaves(entries)]
            for leaf in unused:
                if isinstance(leaf, self.offload._OffloadRef):
                    self.engine.restore(leaf)
            if unused and not self.warned_unused:
                self.warned_unused = True
                LOG.warning(f"{KEY}: {len(unused)} kept matmul outputs of a layer were never used: backward stops its "
                            "recompute before them (a layer's last projection without an adapter, e.g. down_proj); "
                            "drop them from the list, they cost memory and PCIe copies for nothing")


def targeted_modules(model: torch.nn.Module, projections: list[str]) -> tuple[list[torch.nn.Module], int]:
    """Each targeted projection inside a gradient-checkpointed decoder layer, and the number of such layers."""
    from transformers import GradientCheckpointingLayer

    layers = [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]
    targets = [module for layer in layers for name, module in layer.named_modules()
               if name.rsplit(".", 1)[-1] in projections]
    return targets, len(layers)


def install(model: torch.nn.Module, projections: list[str]) -> str:
    """Hook the targeted projections and make every `gradient_checkpointing_enable` call on `model` (Axolotl's
    loader, PEFT's k-bit preparation, the Trainer at train start) non-reentrant with the keeping `context_fn`.
    Call before the first enable call that should keep them; a LoRA wrapper added later keeps the hooked module
    as its `base_layer`. Returns what was done, for the log."""
    projections = sorted(set(projections))
    targets, layers = targeted_modules(model, projections)
    if not targets:
        raise ConfigError(f"`{KEY}`: no gradient-checkpointed decoder layer has {', '.join(projections)}")
    offload = axolotl_offload()
    # a pinned buffer per kept tensor of a micro-step, reused every step (Axolotl's default keeps 128; pinning is slow)
    engine = offload.SacOffloadEngine(max_cpu_buffer_pool_size=len(targets))
    kept = KeptMatmuls(len(targets) // layers, engine, offload)
    for target in targets:
        kept.hook(target)
    enable = model.gradient_checkpointing_enable

    def enable_keeping_matmuls(gradient_checkpointing_kwargs=None, **kwargs):
        checkpoint_kwargs = {**(gradient_checkpointing_kwargs or {}), "use_reentrant": False,
                             "context_fn": kept.context_fn}
        return enable(gradient_checkpointing_kwargs=checkpoint_kwargs, **kwargs)

    model.gradient_checkpointing_enable = enable_keeping_matmuls
    where = "pinned CPU memory" if targets[0].weight.device.type == "cuda" else "where they are: not on CUDA"
    return f"{KEY}: {', '.join(projections)} of {layers} layers kept from the forward ({where}), not recomputed"
