"""The near-dedup stage of a build: which rows go, by MiniLM cosine > 0.9, first seen wins.

Methods, all with the paper's decisions:
- `exact`: every row's MiniLM vector takes part, then the blocked first-seen-wins pass
  (near_dup.keep_first_seen). With a low-precision screen (`screen`, screen.py), MiniLM runs in fp16 or bf16
  on every row and in fp32 only on a calibration sample and the rows of pairs low precision cannot decide:
  fp32's decisions, by construction.
- `prefilter`: a static model distilled from MiniLM picks the rows that could be in a > 0.9 pair
  (prefilter.py); MiniLM embeds only those and the same pass runs over them. The same kept set as `exact`
  whenever the prefilter misses no pair, which it did not on any benchmark set. Opt-in: on real mixtures it
  sends most rows to MiniLM anyway (bench/results/near_dedup-2026-12-01-6000-cpu.md), which does not repay its
  one-off distillation.
- `auto`: `exact` for now, on any device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_builders.dedup import prefilter
from data_builders.dedup.embed import (
    DEFAULT_MODEL,
    FP32,
    LOW_DTYPES,
    default_batch_size,
    embed,
    model_cache,
    openvino_fallback,
    resolve_device,
    resolve_encoder,
)
from data_builders.dedup.near_dup import THRESHOLD, Removal, keep_first_seen
from data_builders.errors import DataError
from data_builders.extras import require_extra

METHODS = ("auto", "exact", "prefilter")
SCREENS = ("auto", "off", *LOW_DTYPES)


@dataclass
class NearDedup:
    keep: np.ndarray  # one bool per row
    removals: list[Removal]  # in row order, indices into the rows given
    vectors: np.ndarray  # MiniLM vectors: fp32 where `embedded`, a low-precision screen's or zero elsewhere
    embedded: np.ndarray  # one bool per row: has its fp32 MiniLM vector
    stats: dict = field(default_factory=dict)  # for the manifest: method, device, encoder, rows embedded, ...


def resolve_method(method: str, model: str, threshold: float) -> str:
    """The method to run for `model` at `threshold`."""
    calibrated = model == DEFAULT_MODEL and threshold >= THRESHOLD
    if method not in METHODS:
        raise DataError(f"unknown near-dedup method {method!r} (known: {', '.join(METHODS)})")
    if method == "prefilter" and not calibrated:
        raise DataError(
            f"the prefilter is calibrated for {DEFAULT_MODEL} at cosine > {THRESHOLD}, not {model} at "
            f"> {threshold}: use the exact method"
        )
    if method == "prefilter":
        require_extra("--near-dedup prefilter", "dedup-fast", "model2vec", "skeletoken", "usearch")
    return "exact" if method == "auto" else method


def cpu_flags() -> set[str]:
    try:
        return {
            flag
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()
        }
    except OSError:
        return set()


def resolve_screen(screen: str, device: str, encoder: str) -> str | None:
    """The low-precision screen to run (None: fp32 only). `auto`: fp16 on a CUDA GPU; bf16 through OpenVINO on
    a CPU with AMX, whose bf16 matrix units are several times its fp32 rate; none on other CPUs, where no
    lower precision was faster (AVX2 cores, OpenVINO int8 included:
    bench/results/near_dedup-2026-12-06-2000-cpu-screen.md) and fp32 decides alone."""
    if screen not in SCREENS:
        raise DataError(f"unknown screen {screen!r} (known: {', '.join(SCREENS)})")
    if screen == "auto":
        if device.startswith("cuda"):
            return "fp16"
        return "bf16" if encoder == "openvino" and "amx_bf16" in cpu_flags() else None
    if screen == "fp16" and encoder == "openvino":
        raise DataError("--screen fp16 runs through torch (--encoder torch); OpenVINO screens in bf16")
    return None if screen == "off" else screen


def screen_pass(
    texts: list[str],
    model: str,
    threshold: float,
    device: str,
    encoder: str,
    low: str,
    batch_size: int,
    progress: bool,
    cache_dir: Path | None,
    fp32,
):
    """screen.screened over `texts` on `device`: `low` precision by `encoder` for every row not in the cache's
    fp32 store, `fp32` for the rest it asks for."""
    import torch

    from data_builders.dedup.cache import keys_of
    from data_builders.dedup.screen import screened

    def tensor(vectors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(vectors).to(device)

    known = None
    if cache_dir is not None:
        found, vectors = model_cache(cache_dir, model, device).lookup(FP32, keys_of(texts))
        known = tensor(vectors) if found.any() else None
    return screened(
        texts,
        lambda rows: tensor(embed(rows, model, batch_size, progress, cache_dir, device, encoder, low)),
        lambda rows: tensor(fp32(rows)),
        threshold,
        known,
    )


def near_dedup(
    texts: list[str],
    model: str = DEFAULT_MODEL,
    threshold: float = THRESHOLD,
    method: str = "auto",
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = False,
    embed_kept: bool = False,
    encoder: str = "auto",
    batch_size: int | None = None,
    screen: str = "auto",
) -> NearDedup:
    """Near-duplicate removal over `texts` in order. `embed_kept`: also give every kept row its fp32 MiniLM
    vector (decontamination compares them with the benchmarks). `batch_size`: rows per forward pass, None: the
    device's default (bench/near_dedup.py varies it). `screen`: a low-precision screen (screen.py): auto, off,
    fp16 or bf16."""
    device = resolve_device(device)
    batch_size = batch_size or default_batch_size(device)
    fallback, encoder = openvino_fallback(encoder, device), resolve_encoder(encoder, device)
    method = resolve_method(method, model, threshold)
    low = resolve_screen(screen, device, encoder) if method == "exact" else None
    n = len(texts)
    stats = {"method": method, "device": device, "encoder": encoder, "batch_size": batch_size, "screen": low}
    if fallback:
        stats["encoder_fallback"] = fallback
    started = time.perf_counter()
    counts: dict = {}  # fp32 vectors found in the cache and embedded

    def fp32(rows_texts: list[str]) -> np.ndarray:
        return embed(rows_texts, model, batch_size, progress, cache_dir, device, encoder, counts=counts)

    if low is not None:
        found = screen_pass(
            texts, model, threshold, device, encoder, low, batch_size, progress, cache_dir, fp32
        )
        stats["screen_stats"] = found.stats
        keep, removals = found.keep, found.removals
        vectors, embedded = found.vectors.cpu().numpy(), found.exact.cpu().numpy()
    else:
        candidates = np.ones(n, dtype=bool)
        if method == "prefilter":
            static = prefilter.static_model(model, cache_dir, device, progress)
            candidates = prefilter.with_neighbour(
                prefilter.static_embed(texts, static, progress), progress=progress
            )
            stats["prefilter"] = {
                "threshold": prefilter.THRESHOLD,
                "rows_with_a_neighbour": int(candidates.sum()),
            }
        rows = np.flatnonzero(candidates)
        keep, removals, vectors, embedded = (
            np.ones(n, dtype=bool),
            [],
            np.zeros((n, 0), np.float32),
            candidates,
        )
        if len(rows):
            found = fp32([texts[i] for i in rows])
            stats["embed_seconds"] = round(time.perf_counter() - started, 1)
            vectors = np.zeros((n, found.shape[1]), dtype=np.float32)
            vectors[rows] = found
            sub_keep, sub_removals = keep_first_seen(torch_on(found, device), threshold)
            keep[rows] = sub_keep
            removals = [Removal(int(rows[r.removed]), int(rows[r.kept]), r.score) for r in sub_removals]
    stats["seconds"] = round(time.perf_counter() - started, 1)
    if embed_kept and (missing := np.flatnonzero(keep & ~embedded)).size:
        found = fp32([texts[i] for i in missing])
        vectors = vectors if vectors.shape[1] else np.zeros((n, found.shape[1]), dtype=np.float32)
        vectors[missing], embedded[missing] = found, True
    stats["rows_embedded"] = int(embedded.sum())
    if cache_dir is not None:
        stats["fp32_from_cache"], stats["fp32_embedded_now"] = (
            counts.get("cached", 0),
            counts.get("embedded", 0),
        )
    return NearDedup(keep, removals, vectors, embedded, stats)


def torch_on(vectors: np.ndarray, device: str):
    """`vectors` as a tensor on `device`, where first-seen-wins runs its products."""
    import torch

    return torch.from_numpy(vectors).to(device)
