"""Throughput arithmetic for the run report and the time budget: real tokens, MFU, step time, projections.

Pure functions (plus `StepClock`, a list of timestamps), tested without a Trainer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

# QLoRA with gradient checkpointing: forward 2N + recompute 2N + input gradients 2N; the frozen 4-bit base
# weights get no weight gradient (docs/gpu-memory.md).
FLOP_PER_PARAM_PER_TOKEN = 6
IGNORE_INDEX = -100


def linear_weight_count(named_modules: Iterable[tuple[str, torch.nn.Module]]) -> int:
    """N of 6N: the base model's linear weights, lm_head included, LoRA's own lora_A / lora_B excluded.

    Counted as in_features x out_features, because a 4-bit weight (bitsandbytes `Linear4bit`, an `nn.Linear`)
    stores two values per byte and its `numel()` is half the real count.
    """
    return sum(
        module.in_features * module.out_features
        for name, module in named_modules
        if isinstance(module, torch.nn.Linear)
        and not any(part.startswith("lora_") for part in name.split("."))
    )


def edge_padding(
    input_ids: torch.Tensor, pad_token_id: int, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Where each row is padded: the run of pad tokens without a label at its right or left end.

    Requiring no label keeps a trained EOS that doubles as the pad token out of the padding.
    """
    pad = input_ids == pad_token_id
    if labels is not None:
        pad &= labels == IGNORE_INDEX
    trailing = pad.flip(-1).int().cumprod(-1).flip(-1).bool()
    leading = pad.int().cumprod(-1).bool()
    return trailing | leading


def real_token_mask(inputs: Mapping, pad_token_id: int | None = None) -> torch.Tensor | None:
    """Where a micro-batch holds real (not padding) tokens; None when it has no input ids.

    With an attention mask: `mask != 0` (with sample packing the mask holds segment ids 1, 2, 3, ...). Packed
    batches on SDPA/eager reach the model with no mask, and Axolotl's collator pads their `position_ids` with
    a range, as one more row: there the padding is the pad-token run at the end of the row (`edge_padding`).
    """
    mask = inputs.get("attention_mask")
    if mask is not None:
        return mask != 0
    ids = inputs.get("input_ids")
    if ids is None:
        return None
    if pad_token_id is None:
        return torch.ones_like(ids, dtype=torch.bool)
    return ~edge_padding(ids, pad_token_id, inputs.get("labels"))


def count_tokens(inputs: Mapping, pad_token_id: int | None = None) -> torch.Tensor:
    """[real, trained] tokens of one micro-batch: real = not padding (`real_token_mask`), trained = label not
    -100.

    Real tokens drive the 6N FLOP count (the prompt is computed too; padding is not useful work). A tensor on
    the batch's device: reading a count back (`int(t)`) would make the host wait for the GPU at every forward
    pass, and stop it from queueing the pass's kernels ahead; the caller adds these up and reads them once a
    step.
    """
    real = real_token_mask(inputs, pad_token_id)
    labels = inputs.get("labels")
    found = next((t for t in (real, labels) if t is not None), None)
    zero = torch.zeros((), dtype=torch.long, device=None if found is None else found.device)
    return torch.stack(
        [
            real.sum() if real is not None else zero,
            (labels != IGNORE_INDEX).sum() if labels is not None else zero,
        ]
    )


def mfu(tokens_per_s: float, n_params: int, peak_tflops: float) -> float:
    """Model FLOPs utilization: achieved 6N FLOP/s over the card's peak."""
    return FLOP_PER_PARAM_PER_TOKEN * n_params * tokens_per_s / (peak_tflops * 1e12)


def steps_per_epoch(micro_batches: int, gradient_accumulation_steps: int) -> int:
    """Optimizer steps in one pass over `micro_batches`; a short last accumulation still makes a step."""
    return math.ceil(micro_batches / gradient_accumulation_steps)


class StepClock:
    """Timestamps of optimizer-step ends after a start; the first `skip` steps (one-off costs) are left
    out."""

    def __init__(self, start: float, skip: int = 1):
        self.start = start
        self.skip = skip
        self.ends: list[float] = []

    def tick(self, now: float) -> None:
        self.ends.append(now)

    def seconds_per_step(self) -> float | None:
        """Mean step time after the skipped steps; all steps while there are not yet more than `skip`."""
        if not self.ends:
            return None
        skip = self.skip if len(self.ends) > self.skip else 0
        since = self.ends[skip - 1] if skip else self.start
        return (self.ends[-1] - since) / (len(self.ends) - skip)


def rate(count_now: float, count_then: float, t_now: float, t_then: float) -> float | None:
    """Per-second rate between two points; None over an empty interval."""
    return (count_now - count_then) / (t_now - t_then) if t_now > t_then else None
