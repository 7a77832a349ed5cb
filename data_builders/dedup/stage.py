"""The near-dedup stage of a build: which rows go, by MiniLM cosine > 0.9, first seen wins.

Methods, all with the paper's decisions:
- `exact`: MiniLM embeds every row, then the blocked first-seen-wins pass (near_dup.keep_first_seen). The GPU default.
- `prefilter`: a static model distilled from MiniLM picks the rows that could be in a > 0.9 pair
  (prefilter.py); MiniLM embeds only those and the same pass runs over them. The same kept set as `exact`
  whenever the prefilter misses no pair, which it did not on any benchmark set. Opt-in: on real mixtures it
  sends most rows to MiniLM anyway (1.03x on 6,000 rows, bench/results/near_dedup-2026-12-01-6000-cpu.md), which
  does not repay its one-off distillation (~90 CPU-s).
- `auto`: `exact` for now, on any device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_builders.dedup import prefilter
from data_builders.dedup.embed import (
    DEFAULT_MODEL,
    default_batch_size,
    embed,
    resolve_device,
    resolve_encoder,
)
from data_builders.dedup.near_dup import THRESHOLD, Removal, keep_first_seen
from data_builders.errors import DataError

METHODS = ("auto", "exact", "prefilter")


@dataclass
class NearDedup:
    keep: np.ndarray  # one bool per row
    removals: list[Removal]  # in row order, indices into the rows given
    vectors: np.ndarray  # MiniLM vectors; rows not embedded (see `embedded`) are zero
    embedded: np.ndarray  # one bool per row: has a MiniLM vector
    stats: dict = field(default_factory=dict)  # for the manifest: method, device, encoder, rows embedded, prefilter


def resolve_method(method: str, model: str, threshold: float) -> str:
    """The method to run for `model` at `threshold`."""
    calibrated = model == DEFAULT_MODEL and threshold >= THRESHOLD
    if method not in METHODS:
        raise DataError(f"unknown near-dedup method {method!r} (known: {', '.join(METHODS)})")
    if method == "prefilter" and not calibrated:
        raise DataError(f"the prefilter is calibrated for {DEFAULT_MODEL} at cosine > {THRESHOLD}, not {model} at "
                        f"> {threshold}: use the exact method")
    return "exact" if method == "auto" else method


def near_dedup(texts: list[str], model: str = DEFAULT_MODEL, threshold: float = THRESHOLD, method: str = "auto",
               device: str = "auto", cache_dir: Path | None = None, progress: bool = False,
               embed_kept: bool = False, encoder: str = "auto", batch_size: int | None = None) -> NearDedup:
    """Near-duplicate removal over `texts` in order. `embed_kept`: also give every kept row its MiniLM vector
    (decontamination compares them with the benchmarks). `batch_size`: rows per forward pass, None: the device's
    default (bench/near_dedup.py varies it)."""
    device = resolve_device(device)
    batch_size = batch_size or default_batch_size(device)
    encoder = resolve_encoder(encoder, device)
    method = resolve_method(method, model, threshold)
    n = len(texts)
    stats = {"method": method, "device": device, "encoder": encoder, "batch_size": batch_size}
    if method == "exact":
        candidates = np.ones(n, dtype=bool)
    else:
        static = prefilter.static_model(model, cache_dir, device, progress)
        candidates = prefilter.with_neighbour(prefilter.static_embed(texts, static, progress), progress=progress)
        stats["prefilter"] = {"threshold": prefilter.THRESHOLD, "rows_with_a_neighbour": int(candidates.sum())}
    rows = np.flatnonzero(candidates)
    keep, removals = np.ones(n, dtype=bool), []
    vectors, embedded = None, candidates.copy()
    if len(rows):
        found = embed([texts[i] for i in rows], model, batch_size, progress, cache_dir, device, encoder)
        vectors = np.zeros((n, found.shape[1]), dtype=np.float32)
        vectors[rows] = found
        sub_keep, sub_removals = keep_first_seen(found, threshold)
        keep[rows] = sub_keep
        removals = [Removal(int(rows[r.removed]), int(rows[r.kept]), r.score) for r in sub_removals]
    if embed_kept and (missing := np.flatnonzero(keep & ~embedded)).size:
        found = embed([texts[i] for i in missing], model, batch_size, progress, cache_dir, device, encoder)
        vectors = vectors if vectors is not None else np.zeros((n, found.shape[1]), dtype=np.float32)
        vectors[missing], embedded[missing] = found, True
    stats["rows_embedded"] = int(embedded.sum())
    if vectors is None:
        vectors = np.zeros((n, 0), dtype=np.float32)
    return NearDedup(keep, removals, vectors, embedded, stats)
