"""What a config needs against what the card (and the host) allows, checked before the model loads.

Two checks refuse outright, each a need known exactly from the config: eager attention keeps every head's
tokens x tokens probabilities for backward (footprint.eager_attention_bytes: 6 GiB a layer for Llama-2-70B at
4,096 tokens), a need no memory lever removes; `nextai_saved_matmuls` fills host memory with every layer's
kept outputs (footprint.kept_output_bytes: 37.6 GB a micro-step for the fast recipe). When that cannot fit,
the run would load for minutes and then fail in its first step; it is refused at startup instead, naming what
it needs. Other configs only get the estimate (footprint.peak_parts), which is not precise enough to refuse
on.
"""

from __future__ import annotations

from collections.abc import Mapping

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.models.architectures import Architecture
from axolotl_nextai.models.footprint import (
    GB,
    GIB,
    eager_attention_bytes,
    embedding_bytes,
    kept_output_bytes,
    micro_step_tokens,
    peak_estimate_bytes,
    weight_bytes,
)


def budget(cap_gb: float | None, device_bytes: int | None) -> tuple[float, str] | None:
    """(bytes, where the limit comes from): the memory cap if set, else the CUDA card; None when neither is
    known."""
    if cap_gb is not None:
        return cap_gb * GB, f"nextai_gpu_memory_cap_gb: {cap_gb:g} ({cap_gb * GB / GIB:.2f} GiB)"
    if device_bytes is not None:
        return device_bytes, f"this GPU's {device_bytes / GIB:.2f} GiB"
    return None


def memory_problems(cfg: Mapping, launch: Launch) -> list[str]:
    """What cannot fit the card (or `nextai_gpu_memory_cap_gb`) whatever the levers; [] when unknown."""
    limit = budget(cfg.get("nextai_gpu_memory_cap_gb"), launch.device_bytes)
    if launch.architecture is None or limit is None:
        return []
    return eager_attention_problems(cfg, launch.architecture, limit)


def eager_attention_problems(cfg: Mapping, arch: Architecture, limit: tuple[float, str]) -> list[str]:
    """Why eager attention cannot fit: its probabilities and the weights alone exceed the limit."""
    if cfg.get("attn_implementation") != "eager" or not cfg.get("sequence_len"):
        return []
    tokens = micro_step_tokens(cfg)
    scores = eager_attention_bytes(arch, tokens)
    weights = weight_bytes(arch) - (embedding_bytes(arch) if cfg.get("nextai_embeddings_on_cpu") else 0)
    allowed, source = limit
    if weights + scores <= allowed:
        return []
    estimate = peak_estimate_bytes(arch, cfg)
    heads = arch.num_attention_heads
    return [
        (
            f"attn_implementation: eager at {tokens:,} tokens per micro-step keeps {heads} heads x "
            f"{tokens:,} x {tokens:,} attention probabilities per layer for backward: {scores / GIB:.2f} "
            f"GiB (fp32 softmax + bf16 copy), on top of {weights / GIB:.2f} GiB of weights: at least "
            f"{(weights + scores) / GIB:.2f} GiB, about {estimate / GIB:.1f} GiB at peak, more than the "
            f"{allowed / GIB:.2f} GiB allowed by {source}. Use attn_implementation: sdpa or "
            "flash_attention_2 (they keep none of it), a shorter sequence_len, or a card with at least "
            f"{estimate / GIB:.0f} GiB."
        )
    ]


def kept_outputs_problems(
    cfg: Mapping, arch: Architecture, available_bytes: float, local_ranks: int = 1
) -> list[str]:
    """Why `nextai_saved_matmuls` cannot keep its outputs: they need more than the host has available. Every
    rank on the host (`local_ranks`, one a GPU) keeps its own micro-step's outputs."""
    if not cfg.get("nextai_saved_matmuls") or not cfg.get("sequence_len"):
        return []
    needed = kept_output_bytes(arch, cfg) * local_ranks
    if needed <= available_bytes:
        return []
    tokens = micro_step_tokens(cfg)
    ranks = f" on each of this host's {local_ranks} ranks" if local_ranks > 1 else ""
    return [
        (
            f"nextai_saved_matmuls: keeping {', '.join(sorted(set(cfg['nextai_saved_matmuls'])))} of "
            f"{arch.num_hidden_layers} layers at {tokens:,} tokens a micro-step{ranks} needs "
            f"{needed / GB:.1f} GB of host memory (pinned, on CUDA), and {available_bytes / GB:.1f} GB is "
            "available here: keep fewer projections (down_proj costs none: it is skipped, not kept), lower "
            "micro_batch_size, or remove the key."
        )
    ]
