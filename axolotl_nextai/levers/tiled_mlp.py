"""Each decoder layer's MLP run over the sequence in shards (`nextai_tiled_mlp_shards`), in training.

A Llama MLP keeps gate, up and their product for backward: 3 x 28,672 bf16 values a token for Llama-2-70B, 672
MiB at 4,096 tokens, plus as much again in gradients while its backward runs. The MLP treats every token on
its own, so it can run over the sequence a shard at a time: the forward keeps only the MLP's input, and the
backward recomputes one shard, takes its gradients and moves on, so only one shard's activations exist at
once.

Axolotl's `tiled_mlp` does the same but needs deepspeed, and its backward draws fresh dropout masks (LoRA
dropout on down_proj), so its gradients belong to a different forward than the one that produced the loss.
Here each shard's RNG and autocast state are saved in the forward and replayed in the backward, as torch's
checkpointing does, and a training forward without autograd (a checkpointed layer's first pass) runs the same
shards: the gradients are those of the forward that produced the loss. What changes against the untiled MLP: a
dropout mask is drawn per shard rather than for the whole sequence (the same distribution), and the MLP's
forward runs once more per step.

Inside a checkpointed decoder layer the MLP's output only feeds the layer's output, which the checkpoint's
recompute throws away: what the recompute needs of the tiled MLP is only the tensors it saves (its input), so
there it computes nothing (a NaN placeholder stands in for the output). The MLP then runs forward twice per
step, not three times: once in the forward, once shard by shard in its backward.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import torch

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch_modules
from axolotl_nextai.levers.saved_matmuls import in_recompute


def rng_state(device: torch.device) -> tuple:
    """The CPU generator's state, and the device's when it is a CUDA one."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


@contextmanager
def replayed(state: tuple, device: torch.device, autocast: dict):
    """Run under a saved RNG and autocast state; the caller's RNG streams are left as they were."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], device)
        with torch.autocast(device.type, **autocast):
            yield


def autocast_state(device_type: str) -> dict:
    return {
        "enabled": torch.is_autocast_enabled(device_type),
        "dtype": torch.get_autocast_dtype(device_type),
        "cache_enabled": torch.is_autocast_cache_enabled(),
    }


def run_sharded(mlp_forward, x: torch.Tensor, shards: int, rng_states: list | None = None) -> torch.Tensor:
    """The MLP shard by shard along the sequence; each shard's RNG state is appended to `rng_states`. Training
    always goes through here, with or without autograd, so that the no-grad forward of a checkpointed layer
    and its recompute draw the same dropout masks, shard by shard."""
    outputs = []
    for piece in x.tensor_split(shards, dim=-2):
        if rng_states is not None:
            rng_states.append(rng_state(x.device))
        outputs.append(mlp_forward(piece))
    return torch.cat(outputs, dim=-2)


class TiledMLPFunction(torch.autograd.Function):
    """out = mlp(x), computed and differentiated a shard of the sequence (dim -2) at a time; `params` are the
    MLP's trainable tensors, inputs here so that autograd hands their gradients on."""

    @staticmethod
    def forward(ctx, mlp_forward, shards, x, *params):
        ctx.save_for_backward(x, *params)
        # a checkpoint's recompute: the saved tensors are all it needs; backward uses the first
        if in_recompute():
            return torch.full_like(x, float("nan"))  # forward's ctx (RNG states), not this one
        ctx.mlp_forward, ctx.shards = mlp_forward, shards
        ctx.autocast = autocast_state(x.device.type)
        ctx.rng_states = []
        with torch.no_grad():
            return run_sharded(mlp_forward, x, shards, ctx.rng_states)

    @staticmethod
    def backward(ctx, grad_output):
        x, *params = ctx.saved_tensors
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[2] else None
        grad_params = [None] * len(params)
        wanted = [i for i, p in enumerate(params) if ctx.needs_input_grad[3 + i]]
        start = 0
        for state, piece, grad_piece in zip(
            ctx.rng_states,
            x.tensor_split(ctx.shards, dim=-2),
            grad_output.tensor_split(ctx.shards, dim=-2),
            strict=True,
        ):
            piece = piece.detach().requires_grad_(grad_x is not None)
            with replayed(state, x.device, ctx.autocast), torch.enable_grad():
                out = ctx.mlp_forward(piece)
            inputs = ([piece] if grad_x is not None else []) + [params[i] for i in wanted]
            grads = list(torch.autograd.grad(out, inputs, grad_piece, allow_unused=True))
            if grad_x is not None:
                grad_x.narrow(-2, start, piece.shape[-2]).copy_(grads.pop(0))
            for i, grad in zip(wanted, grads, strict=True):
                if grad is not None:
                    grad_params[i] = grad if grad_params[i] is None else grad_params[i] + grad
            start += piece.shape[-2]
        return None, None, grad_x, *grad_params


def tiled_forward(mlp: torch.nn.Module, shards: int):
    """`mlp.forward` run in shards in training (with autograd: `TiledMLPFunction`); its current forward,
    patched or not, is what runs per shard. Made after the adapters exist: their parameters are collected
    here."""
    inner = mlp.forward
    params = [p for p in mlp.parameters() if p.requires_grad]

    def forward(x, *args, **kwargs):
        if args or kwargs or not mlp.training or x.shape[-2] < shards:
            return inner(x, *args, **kwargs)
        if torch.is_grad_enabled() and (x.requires_grad or params):
            return TiledMLPFunction.apply(inner, shards, x, *params)
        return run_sharded(inner, x, shards)

    return forward


class TiledMlp:
    """`nextai_tiled_mlp_shards`: every decoder layer's MLP (a submodule named `mlp`) run in shards."""

    key = "nextai_tiled_mlp_shards"
    # after the adapter: its parameters are the ones the shards' backward differentiates
    hook = "post_model_load"
    # under FSDP2 on 2 CPU ranks it trained other gradients than one process (7.4386 vs 7.4367)
    distributed = False

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        return []

    def install(self, cfg: Mapping, model: torch.nn.Module) -> str:
        self.uninstall(model)
        shards = cfg[self.key]
        mlps = [module for name, module in model.named_modules() if name.rsplit(".", 1)[-1] == "mlp"]
        for mlp in mlps:
            patch(mlp, "forward", tiled_forward(mlp, shards), self.key)
        return f"{self.key}: {len(mlps)} MLPs run in {shards} shards in training"

    def uninstall(self, model: torch.nn.Module) -> None:
        unpatch_modules(model, self.key)
