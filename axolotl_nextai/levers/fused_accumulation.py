"""Gradient accumulation fused into the micro-batch: the same rows, order, optimizer steps and loss, fewer
passes.

At micro-batch 1 x accumulation 4 every micro-step pays a fixed cost (each NF4 weight dequantized in forward,
recompute and backward; the Python of 80 checkpointed layers) for one short row, several times the matmul work
of v5's mean row of 362 tokens (docs/gpu-memory.md). `nextai_fuse_accumulation` lets the Trainer draw the
accumulation window's rows as one batch and trains them in as few forward passes as a token budget allows,
with the unfused recipe's math:

- Rows and order: transformers' `group_by_length` sampler groups by `train_batch_size *
  gradient_accumulation_steps`, and a batch of that many rows is what the window's micro-batches held, in the
  same order; Axolotl computes `max_steps`, the warm-up and the LR schedule from `micro_batch_size *
  gradient_accumulation_steps`, unchanged.
- Loss: Axolotl 0.19 turns off transformers' token-weighted accumulation for models whose `forward` does not
  name `num_items_in_batch` (Llama's takes `**kwargs`), so each micro-batch's loss is the mean over its own
  label tokens, divided by the window's micro-batch count. `accumulation_token_weights` gives each label token
  the weight it had there (or 1 / the window's label tokens where the Trainer does weight by tokens), and the
  model's loss function sums weighted token losses: the same objective, and so the same gradients.
- Memory: `split_rows` cuts the batch into forward passes of at most `max_tokens` padded tokens (default
  `sequence_len`: never more than the unfused recipe's longest micro-step); gradients accumulate across them.

What differs: padding (rows share a batch's padded width; masked, so only float rounding changes) and LoRA
dropout's random masks (drawn for the batch at once). `tests/axolotl_nextai/levers/test_fused_accumulation.py`
checks equal losses and adapters through the real Axolotl CLI.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Mapping

import torch

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch

KEY = "nextai_fuse_accumulation"
IGNORE_INDEX = -100
# Keys that replace the model's loss with one that never sees the logits, or never calls its loss_function.
OWN_LOSS_KEYS = ("liger_fused_linear_cross_entropy", "cut_cross_entropy", "chunked_cross_entropy")


def fuses(cfg: Mapping) -> bool:
    """`nextai_fuse_accumulation` is on and there is accumulation to fuse."""
    return bool(cfg.get(KEY)) and (cfg.get("gradient_accumulation_steps") or 1) > 1


def fused_batch_args(micro_batch_size: int, gradient_accumulation_steps: int) -> dict:
    """The Trainer's batch arguments that draw one accumulation window as one batch."""
    return {
        "per_device_train_batch_size": micro_batch_size * gradient_accumulation_steps,
        "gradient_accumulation_steps": 1,
    }


def label_mask(labels: torch.Tensor) -> torch.Tensor:
    """Which logits are trained: position t predicts label t + 1 (causal shift), the last predicts nothing."""
    shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    return shifted != IGNORE_INDEX


def accumulation_token_weights(
    labels: torch.Tensor, micro_batch_size: int, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Per-logit weights (rows x positions, float32) that make the fused batch's loss the unfused window's.

    Unfused, rows `[m * micro_batch_size, (m + 1) * micro_batch_size)` formed micro-batch m. Without
    `num_items_in_batch` each micro-batch's loss was the mean over its label tokens, divided by the window's
    micro-batch count, so a token of micro-batch m weighs 1 / (its label tokens x micro-batches); a
    micro-batch without label tokens weighs nothing. With it (token-weighted accumulation) every label token
    weighs 1 / `num_items_in_batch`.
    """
    trained = label_mask(labels).float()
    if num_items_in_batch is not None:
        return trained / float(num_items_in_batch)
    rows = labels.shape[0]
    micro_batches = math.ceil(rows / micro_batch_size)
    of_row = torch.arange(rows, device=labels.device) // micro_batch_size
    per_micro = torch.zeros(micro_batches, device=labels.device).index_add_(0, of_row, trained.sum(1))
    scale = torch.where(
        per_micro > 0, 1.0 / (per_micro.clamp(min=1) * micro_batches), torch.zeros_like(per_micro)
    )
    return trained * scale[of_row, None]


def split_rows(rows: int, width: int, max_tokens: int) -> list[slice]:
    """Consecutive row ranges, as even as possible, each at most `max_tokens` padded tokens (one row at
    least)."""
    per_pass = max(1, max_tokens // width)
    passes = math.ceil(rows / per_pass)
    bounds = [round(i * rows / passes) for i in range(passes + 1)]
    return [slice(start, end) for start, end in itertools.pairwise(bounds)]


def rows_of(inputs: dict, rows: slice, batch: int) -> dict:
    """The inputs of `rows`: every tensor with a row per batch row is sliced, anything else kept."""
    return {
        key: value[rows] if torch.is_tensor(value) and value.dim() and value.shape[0] == batch else value
        for key, value in inputs.items()
    }


def weighted_token_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of each trained position's cross-entropy (in float32, as transformers' causal-LM loss) times its
    weight."""
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    losses = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1),
        targets.flatten().to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return (losses * weights.flatten().to(losses.device)).sum()


class WeightedLoss:
    """The model's loss function while fused batches train: `weighted_token_loss` with the weights of the
    forward pass in flight; otherwise (evaluation) the model's own loss function."""

    def __init__(self, default):
        self.default = default
        self.weights: torch.Tensor | None = None
        self.calls = 0

    def __call__(self, logits, labels, vocab_size=None, **kwargs):
        if self.weights is None:
            return self.default(logits, labels, vocab_size, **kwargs)
        self.calls += 1
        return weighted_token_loss(logits, labels, self.weights)


class FusedAccumulationMixin:
    """Trains a batch drawn for a whole accumulation window in forward passes of at most `fused_max_tokens`
    padded tokens, the loss weighted as the unfused window's (`accumulation_token_weights`)."""

    fused_micro_batch_size: int
    fused_max_tokens: int
    # set by `FusedAccumulation.install`; unset: the base Trainer's step
    fused_loss: WeightedLoss | None = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.fused_loss is None:
            return super().training_step(model, inputs, num_items_in_batch)
        labels = inputs["labels"]
        token_weighted = self.model_accepts_loss_kwargs and num_items_in_batch is not None
        weights = accumulation_token_weights(
            labels, self.fused_micro_batch_size, num_items_in_batch if token_weighted else None
        )
        batch, width = labels.shape
        passes = split_rows(batch, width, self.fused_max_tokens)
        total = None
        for i, rows in enumerate(passes):
            # as the Trainer does between micro-batches: gradients synchronise once, after the last pass
            last = i == len(passes) - 1
            sync = contextlib.nullcontext() if last else self.accelerator.no_sync(model=model)
            self.fused_loss.weights = weights[rows]
            calls = self.fused_loss.calls
            try:
                with sync:
                    loss = super().training_step(model, rows_of(inputs, rows, batch), num_items_in_batch)
            finally:
                self.fused_loss.weights = None
            if self.fused_loss.calls == calls:
                raise RuntimeError(
                    "nextai_fuse_accumulation: the model's forward did not call its loss_function, so the "
                    "fused batch's loss could not be weighted as the unfused one; a kernel that computes "
                    "the loss itself (Liger's fused linear cross-entropy, cut cross-entropy) cannot be "
                    "combined with it"
                )
            total = loss if total is None else total + loss
        return total


def base_model(model):
    """The transformers model under PEFT's wrapper: the one whose forward calls `loss_function`."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@functools.cache
def fused_trainer_class(base: type) -> type:
    """`base` (a Trainer class) with `FusedAccumulationMixin`'s training step."""
    return type(f"Fused{base.__name__}", (FusedAccumulationMixin, base), {})


def trainer_class(cfg: Mapping) -> type:
    """The Trainer class Axolotl builds for this config (its own, or `trainer_cls`), fused."""
    if cfg.get("trainer_cls"):
        from axolotl.utils.import_helper import get_cls_from_module_str

        return fused_trainer_class(get_cls_from_module_str(cfg["trainer_cls"]))
    from axolotl.core.trainers import AxolotlTrainer

    return fused_trainer_class(AxolotlTrainer)


class FusedAccumulation:
    """`nextai_fuse_accumulation`. Through the plugin, the Trainer is built with `fused_batch_args` and of
    `trainer_class` (Axolotl's `get_trainer_cls`); `install` then weights the model's loss."""

    key = KEY
    hook = "post_trainer_create"
    # ranks would fuse their rows into different numbers of passes, and under FSDP every pass gathers weights
    # from all of them: on 2 CPU ranks under FSDP2 one aborted (SIGABRT) and the other lost it
    distributed = False

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        """Why fusing cannot keep this config's math."""
        problems = []
        if cfg.get("sample_packing"):
            problems.append(
                f"{KEY} needs unpacked rows: with sample_packing Axolotl packs rows per micro-batch, so "
                f"a fused batch would hold other packs; set {KEY}: false (or sample_packing: false)"
            )
        other = [key for key in ("rl", "reward_model", "process_reward_model") if cfg.get(key)]
        if other:
            problems.append(
                f"{KEY} weights a causal-LM loss; {other[0]}: {cfg[other[0]]} trains another loss; set "
                f"{KEY}: false"
            )
        own = [key for key in OWN_LOSS_KEYS if cfg.get(key)]
        if own:
            problems.append(
                f"{KEY} weights each row's loss through the model's loss_function, which "
                f"{', '.join(own)} replaces; set {KEY}: false "
                f"(or {' and '.join(f'{key}: false' for key in own)})"
            )
        return problems

    def install(self, cfg: Mapping, trainer) -> str:
        """Make `trainer` train each batch as an accumulation window of micro-batches of `micro_batch_size`
        rows, in passes of at most `nextai_fuse_accumulation_max_tokens` padded tokens."""
        if not fuses(cfg):
            return f"{KEY}: gradient_accumulation_steps is 1, nothing to fuse"
        if not isinstance(trainer, FusedAccumulationMixin):
            raise ConfigError(
                f"{KEY}: the Trainer is a {type(trainer).__name__}, another plugin's class, which "
                f"cannot train fused batches; set {KEY}: false or remove that plugin"
            )
        self.uninstall(trainer)
        model = base_model(trainer.model)
        loss = WeightedLoss(model.loss_function)
        # what transformers' `loss_function` property returns when set
        patch(model, "_loss_function", loss, KEY)
        micro_batch_size = cfg["micro_batch_size"]
        max_tokens = cfg.get("nextai_fuse_accumulation_max_tokens") or cfg["sequence_len"]
        for name, value in (
            ("fused_loss", loss),
            ("fused_micro_batch_size", micro_batch_size),
            ("fused_max_tokens", max_tokens),
        ):
            patch(trainer, name, value, KEY)
        return (
            f"{KEY}: each optimizer step's {micro_batch_size} x {cfg['gradient_accumulation_steps']} rows "
            f"drawn as one batch, trained in passes of at most {max_tokens} padded tokens, each "
            "micro-batch's loss weighted as unfused"
        )

    def uninstall(self, trainer) -> None:
        """The model's own loss function back; the Trainer then trains each batch as it comes."""
        unpatch(base_model(trainer.model), KEY)
        unpatch(trainer, KEY)
