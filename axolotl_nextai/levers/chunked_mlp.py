"""Each decoder layer's MLP run over its intermediate dimension in chunks (`nextai_mlp_chunks`), in training.

A Llama MLP is down(silu(gate x) * up x): every one of its 28,672 intermediate features (Llama-2-70B) is a row
of gate and up and a column of down, and the output is the sum over them. So the MLP can run a chunk of
features at a time: gate's and up's rows of the chunk, SiLU, the product, down's columns of the chunk, added
into the output. Only one chunk's activations exist at once, as with the tiled MLP (`nextai_tiled_mlp_shards`,
which cuts the tokens instead); but here each 4-bit weight is dequantized once a pass, a chunk at a time (NF4
rows of gate and up, NF4 columns of down: whole blocks, `chunked_dequant.NF4Weight`), where the tiled MLP
dequantizes every weight once per token shard. r 64 at cutoff 4,096 with 8 token shards and 32 MiB dequant
chunks dequantizes each MLP weight 8 x 14 times a pass, mostly the host's time
(bench/results/gpu70b-plan-2026-12-06.md).

The forward keeps only the MLP's input for backward. Backward computes each chunk's gate and up again (not
down's forward: its output is not needed), then the chunk's gradients; inside a checkpointed decoder layer the
checkpoint's recompute computes nothing here (the MLP's output only feeds the layer's output, which the
recompute throws away). A LoRA adapter on down_proj (Table 4's targets) is computed chunk by chunk too: its
input's dropout mask is drawn per chunk, from an RNG state saved in the forward and replayed in backward, so
the gradients are those of the forward that ran; its A output is added up in fp32 and B applied once. Output
and input gradient are added up over chunks in fp32: the same values as the unchunked MLP up to the matmuls'
rounding.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.chunked_dequant import NF4Weight
from axolotl_nextai.levers.contract import patch, unpatch_modules
from axolotl_nextai.levers.saved_matmuls import base_linear, in_recompute
from axolotl_nextai.levers.tiled_mlp import autocast_state, replayed, rng_state

KEY = "nextai_mlp_chunks"


def chunked_mlp_problems(cfg: Mapping) -> list[str]:
    """Why `nextai_mlp_chunks` cannot serve this config, one line each; [] when it can."""
    if not cfg.get(KEY):
        return []
    problems = []
    targets = cfg.get("lora_target_modules") or []
    adapted = sorted({"gate_proj", "up_proj"} & set([targets] if isinstance(targets, str) else targets))
    if adapted or cfg.get("lora_target_linear") or "all-linear" in targets:
        problems.append(
            f"`{KEY}` computes a LoRA adapter on down_proj only (Table 4's targets: o_proj, down_proj); "
            f"lora_target_modules adapts {', '.join(adapted) or 'every linear layer'}: remove {KEY} or "
            "those targets"
        )
    if cfg.get("nextai_tiled_mlp_shards") is not None:
        problems.append(
            f"`{KEY}` and nextai_tiled_mlp_shards both cut the MLP (features and tokens): keep one"
        )
    kept = sorted({"gate_proj", "up_proj", "down_proj"} & set(cfg.get("nextai_saved_matmuls") or []))
    if kept:
        problems.append(
            f"`{KEY}`: the chunked MLP computes {', '.join(kept)} itself, nextai_saved_matmuls would keep "
            "nothing for them: remove them from nextai_saved_matmuls"
        )
    return problems


class Slices:
    """Rows (output features) and columns (input features) of a projection's weight in its compute dtype: from
    its NF4 data for a bitsandbytes 4-bit linear (which computes in its quant state's dtype), else the weight
    itself."""

    def __init__(self, linear: torch.nn.Module):
        weight = linear.weight
        quant_state = getattr(weight, "quant_state", None)
        self.nf4 = NF4Weight.from_bnb(weight, quant_state) if quant_state is not None else None
        self.weight = weight
        self.dtype = quant_state.dtype if quant_state is not None else weight.dtype
        self.out_features = quant_state.shape[0] if quant_state is not None else weight.shape[0]

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return (self.nf4.rows(start, stop) if self.nf4 else self.weight[start:stop]).to(self.dtype)

    def columns(self, start: int, stop: int) -> torch.Tensor:
        return (self.nf4.columns(start, stop) if self.nf4 else self.weight[:, start:stop]).to(self.dtype)


def projections(mlp: torch.nn.Module) -> tuple[Slices, Slices, Slices]:
    return tuple(Slices(base_linear(getattr(mlp, name))) for name in ("gate_proj", "up_proj", "down_proj"))


def accumulated(dtype: torch.dtype) -> torch.dtype:
    """What sums over chunks are kept in: fp32, or the compute dtype where it is wider."""
    return torch.promote_types(dtype, torch.float32)


def chunk_bounds(features: int, chunks: int, multiple: int) -> list[tuple[int, int]]:
    """`chunks` ranges over `features`, each boundary a multiple of `multiple` (NF4's blocksize), as even as
    can be."""
    units = features // multiple
    cuts = [round(i * units / chunks) * multiple for i in range(chunks + 1)]
    cuts[-1] = features
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def lora_of(down: torch.nn.Module):
    """(A, B, scaling, dropout p) of down_proj's active LoRA adapter, or None."""
    if not hasattr(down, "lora_A") or not getattr(down, "active_adapters", None):
        return None
    name = down.active_adapters[0]
    dropout = down.lora_dropout[name]
    return (
        down.lora_A[name].weight,
        down.lora_B[name].weight,
        down.scaling[name],
        dropout.p if isinstance(dropout, torch.nn.Dropout) else 0.0,
    )


def dropout_mask(h: torch.Tensor, p: float) -> torch.Tensor | None:
    """The kept-and-rescaled mask of a dropout on `h` (None without dropout): drawn from the current RNG."""
    if not p:
        return None
    return torch.empty_like(h).bernoulli_(1 - p).div_(1 - p)


class ChunkedMLPFunction(torch.autograd.Function):
    """out = down(silu(gate x) * up x) [+ LoRA on down], a chunk of intermediate features at a time both
    ways."""

    @staticmethod
    def forward(ctx, x, mlp, bounds, lora_p, scaling, *lora):
        ctx.save_for_backward(x, *lora)
        # a checkpoint's recompute: only the saved input is needed; backward uses the first
        if in_recompute():
            return torch.full_like(x, float("nan"))  # forward's ctx (RNG state)
        ctx.mlp, ctx.bounds, ctx.lora_p, ctx.scaling = mlp, bounds, lora_p, scaling
        ctx.autocast, ctx.rng = autocast_state(x.device.type), rng_state(x.device)
        with torch.no_grad():
            return run_chunks(x, mlp, bounds, lora_p, scaling, lora)

    @staticmethod
    def backward(ctx, grad_out):
        x, *lora = ctx.saved_tensors
        gate, up, down = projections(ctx.mlp)
        dtype = gate.dtype
        wide = accumulated(dtype)
        flat_x = x.reshape(-1, x.shape[-1]).to(dtype)
        dy = grad_out.reshape(-1, grad_out.shape[-1]).to(dtype)
        grad_x = torch.zeros(flat_x.shape, dtype=wide, device=x.device)
        if lora:
            A, B = (w.to(dtype) for w in lora)
            lora_grad = ctx.scaling * (dy @ B)  # the gradient at A's output, (tokens, r)
            a_out = torch.zeros(flat_x.shape[0], A.shape[0], dtype=wide, device=x.device)
            grad_A = torch.zeros(A.shape, dtype=wide, device=x.device)
        with replayed(ctx.rng, x.device, ctx.autocast), torch.no_grad():
            for start, stop in ctx.bounds:
                w_gate, w_up = gate.rows(start, stop), up.rows(start, stop)
                g, u = flat_x @ w_gate.t(), flat_x @ w_up.t()
                silu = torch.nn.functional.silu(g)
                grad_h = dy @ down.columns(start, stop)
                if lora:  # the chunk's dropout mask, drawn in the forward's order from its RNG state
                    mask = dropout_mask(g, ctx.lora_p)
                    dropped = silu * u if mask is None else silu * u * mask
                    a_out += (dropped @ A[:, start:stop].t()).to(wide)
                    grad_A[:, start:stop] = (lora_grad.t() @ dropped).to(wide)
                    grad_lora = lora_grad @ A[:, start:stop]
                    grad_h = grad_h + (grad_lora if mask is None else grad_lora * mask)
                sig = torch.sigmoid(g.to(wide))
                grad_g = (grad_h.to(wide) * u.to(wide) * sig * (1 + g.to(wide) * (1 - sig))).to(dtype)
                grad_x += (grad_g @ w_gate).to(wide)
                grad_x += ((grad_h * silu) @ w_up).to(wide)
        grads = [None] * 4  # mlp, bounds, lora_p, scaling
        if lora:
            grad_B = ctx.scaling * (dy.t() @ a_out.to(dtype))
            grads += [grad_A.to(lora[0].dtype), grad_B.to(lora[1].dtype)]
        return grad_x.to(x.dtype).view_as(x), *grads


def run_chunks(x, mlp, bounds, lora_p, scaling, lora) -> torch.Tensor:
    """The MLP's output, a chunk of intermediate features at a time (no autograd); one dropout mask per
    chunk."""
    gate, up, down = projections(mlp)
    dtype = gate.dtype
    wide = accumulated(dtype)
    flat_x = x.reshape(-1, x.shape[-1]).to(dtype)
    out = torch.zeros(flat_x.shape[0], down.out_features, dtype=wide, device=x.device)
    if lora:
        A, B = (w.to(dtype) for w in lora)
        a_out = torch.zeros(flat_x.shape[0], A.shape[0], dtype=wide, device=x.device)
    for start, stop in bounds:
        g = flat_x @ gate.rows(start, stop).t()
        h = torch.nn.functional.silu(g) * (flat_x @ up.rows(start, stop).t())
        out += (h @ down.columns(start, stop).t()).to(wide)
        if lora:
            mask = dropout_mask(g, lora_p)
            a_out += ((h if mask is None else h * mask) @ A[:, start:stop].t()).to(wide)
    result = out.to(dtype)
    if lora:
        result = result + scaling * (a_out.to(dtype) @ B.t())
    return result.to(x.dtype).view(*x.shape[:-1], result.shape[-1])


def chunked_forward(mlp: torch.nn.Module, chunks: int):
    """`mlp.forward` run in `chunks` chunks of intermediate features in training. Made after the adapters
    exist: down_proj's LoRA weights are read here."""
    down = base_linear(mlp.down_proj)
    quant_state = getattr(down.weight, "quant_state", None)
    features = quant_state.shape[1] if quant_state is not None else down.in_features
    bounds = chunk_bounds(features, chunks, quant_state.blocksize if quant_state is not None else 1)
    lora = lora_of(mlp.down_proj)
    inner = mlp.forward

    def forward(x, *args, **kwargs):
        if args or kwargs or not mlp.training:
            return inner(x, *args, **kwargs)
        weights = lora[:2] if lora else ()
        p, scaling = (lora[3], lora[2]) if lora else (0.0, 1.0)
        if torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights)):
            return ChunkedMLPFunction.apply(x, mlp, bounds, p, scaling, *weights)
        return run_chunks(x, mlp, bounds, p, scaling, weights)

    return forward


class ChunkedMlp:
    """`nextai_mlp_chunks`: every decoder layer's MLP (a submodule named `mlp` with gate, up and down
    projections and SiLU) run in chunks of its intermediate features."""

    key = KEY
    hook = "post_model_load"  # after the adapter: down_proj's LoRA weights are read at install
    distributed = False

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        return chunked_mlp_problems(cfg)

    def install(self, cfg: Mapping, model: torch.nn.Module) -> str:
        self.uninstall(model)
        chunks = cfg[KEY]
        mlps = [
            module
            for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] == "mlp"
            and all(hasattr(module, p) for p in ("gate_proj", "up_proj", "down_proj"))
        ]
        for mlp in mlps:
            act = getattr(getattr(mlp, "config", None), "hidden_act", "silu")
            if act != "silu":
                raise ValueError(f"{KEY}: the chunked MLP computes SiLU; this model's MLP uses {act!r}")
            patch(mlp, "forward", chunked_forward(mlp, chunks), KEY)
        return f"{KEY}: {len(mlps)} MLPs run in {chunks} chunks of intermediate features in training"

    def uninstall(self, model: torch.nn.Module) -> None:
        unpatch_modules(model, KEY)
