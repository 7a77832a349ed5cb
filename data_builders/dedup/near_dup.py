"""Step 2: first-seen-wins selection at a cosine threshold, with blocked matrix products.

The rule is Platypus': walk the items in order and keep one only if its cosine to every item kept so far is
at most the threshold (0.9). Walking one item at a time costs a matrix-vector product per item against the
whole kept set. Here a block of B items is compared with the kept set in one matrix product, and the few
items that still conflict inside the block are resolved in order, so the Python loop runs only over
in-block conflicts, never over the kept set. The kept set is the one the item-by-item walk gives.

The products run in torch on the vectors' device (numpy arrays: the CPU; a CUDA tensor: its GPU), in full fp32
(no TF32: its 10-bit products would move cosines by ~1e-3); the in-block walk runs on the CPU.

Given a `screen` (screen.py: low-precision vectors, a bound on each one's error, a way to embed rows again in
fp32), each block is first settled: every row of a pair, with a kept item or inside the block, that low
precision cannot decide (|u_i·u_j − t| within pair_bound) is embedded again in fp32, unless a decided pair
already removes it, until no such pair is left; the block's decisions are then fp32's.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

THRESHOLD = 0.9  # Platypus: remove an item whose cosine to an earlier kept item is > 0.9


@dataclass(frozen=True)
class Removal:
    removed: int  # index of the removed item
    kept: int  # index of the kept item it is closest to
    score: float  # their cosine


class Screen(Protocol):
    """Low-precision vectors with a bound on each one's error (screen.py)."""

    delta: torch.Tensor  # per row: the bound on its vector's error (0: an fp32 vector)

    def refine(self, rows: np.ndarray) -> None:
        """Replace the vectors of `rows` by fp32 ones, in place, and set their delta to 0."""


def pair_bound(delta_a: torch.Tensor, delta_b: torch.Tensor, threshold: float) -> torch.Tensor:
    """How far a low-precision cosine can be from fp32's, for every pair of a row of `delta_a` and one of
    `delta_b`, where it matters: for a cosine on the other side of `threshold` (screen.py derives it)."""
    a, b = delta_a[:, None], delta_b[None, :]
    triangle = a + b + a * b
    sine = (1 - (threshold - triangle).clamp(min=0) ** 2).sqrt()
    return torch.minimum(triangle, sine * (a + b) + (a * a + b * b) / 2 + a * b)


def as_tensor(x) -> torch.Tensor:
    """A float32 tensor of `x` (numpy: on the CPU, sharing its memory; a tensor stays on its device)."""
    return (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))).float()


@contextmanager
def full_fp32():
    """Matrix products in IEEE fp32 while inside (TF32 off), whatever the process set."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def nearest(x, keys, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of each row's most similar row of `keys` (the first on ties), for unit-norm rows.

    Rows and keys go in blocks, so a pass over 60k x 60k never holds more than block x block scores.
    """
    at, score = nearest_tensor(as_tensor(x), as_tensor(keys), block)
    return at.cpu().numpy(), score.cpu().numpy()


def nearest_tensor(
    x: torch.Tensor, keys: torch.Tensor, block: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    best_at = torch.zeros(len(x), dtype=torch.int64, device=x.device)
    best_score = torch.full((len(x),), -torch.inf, dtype=torch.float32, device=x.device)
    with full_fp32():
        for r in range(0, len(x), block):
            at, score = best_at[r : r + block], best_score[r : r + block]  # views: updated in place
            for c in range(0, len(keys), block):
                top, col = (x[r : r + block] @ keys[c : c + block].T).max(dim=1)
                better = top > score
                at[better], score[better] = c + col[better], top[better]
    return best_at, best_score


@full_fp32()
def undecided_with(
    x: torch.Tensor, dx: torch.Tensor, keys: torch.Tensor, dkeys: torch.Tensor, threshold: float, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of `x` a pair with a key decides a duplicate; rows in a pair with a key that low precision cannot
    decide, and in none that decides them a duplicate; the keys of those pairs)."""
    certain = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    unsure = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for c in range(0, len(keys), block):
        gap, bound = x @ keys[c : c + block].T - threshold, pair_bound(dx, dkeys[c : c + block], threshold)
        certain |= (gap > bound).any(dim=1)
        unsure |= (gap.abs() <= bound).any(dim=1)
    rows = unsure & ~certain
    partners = torch.zeros(len(keys), dtype=torch.bool, device=x.device)
    if rows.any():
        for c in range(0, len(keys), block):
            gap = x[rows] @ keys[c : c + block].T - threshold
            partners[c : c + block] = (
                gap.abs() <= pair_bound(dx[rows], dkeys[c : c + block], threshold)
            ).any(dim=0)
    return certain.cpu().numpy(), rows.cpu().numpy(), partners.cpu().numpy()


@full_fp32()
def undecided_inside(x: torch.Tensor, dx: torch.Tensor, threshold: float, removed: np.ndarray) -> np.ndarray:
    """Rows of `x` in a pair inside `x` that low precision cannot decide, among rows not `removed` already."""
    gap = x @ x.T - threshold
    unsure = torch.triu(gap.abs() <= pair_bound(dx, dx, threshold), diagonal=1).cpu().numpy()
    unsure &= ~removed[:, None] & ~removed[None, :]
    return unsure.any(axis=0) | unsure.any(axis=1)


def keep_first_seen(
    embeddings,
    threshold: float = THRESHOLD,
    block: int | None = None,
    key_block: int | None = None,
    screen: Screen | None = None,
) -> tuple[np.ndarray, list[Removal]]:
    """(keep mask, removals in item order) for unit-norm `embeddings` (n x d, numpy or a tensor on any device;
    with a `screen`, its vectors, which it refines in place). Blocks of rows and of kept items: None, 1,024
    and 4,096 on a CPU, 4,096 and 65,536 on a GPU (larger products, fewer steps)."""
    vectors = as_tensor(embeddings)
    block = block or (4096 if vectors.is_cuda else 1024)
    key_block = key_block or (65536 if vectors.is_cuda else 4096)
    n = len(vectors)
    keep = np.zeros(n, dtype=bool)
    kept_rows = torch.empty_like(vectors)  # embeddings of kept items, in order
    kept_index = np.empty(n, dtype=np.int64)
    kept_at = np.full(n, -1, dtype=np.int64)  # an item's place in kept_rows
    m = 0
    removals: list[Removal] = []
    for start in range(0, n, block):
        if screen is not None:
            settle(
                vectors,
                start,
                min(start + block, n),
                kept_rows[:m],
                kept_index[:m],
                kept_at,
                screen,
                threshold,
                key_block,
            )
        x = vectors[start : start + block]
        best_score = np.full(len(x), -np.inf, dtype=np.float32)
        best_kept = np.full(len(x), -1, dtype=np.int64)
        if m:
            at, score = nearest_tensor(x, kept_rows[:m], key_block)
            best_score, best_kept = score.cpu().numpy(), kept_index[at.cpu().numpy()]
        with full_fp32():
            inner_all = (x @ x.T > threshold).cpu().numpy()
        x = x.cpu().numpy()
        alive = best_score <= threshold
        inner = np.triu(inner_all, k=1) & alive[:, None] & alive[None, :]
        block_keep = alive.copy()
        for j in np.flatnonzero(inner.any(axis=0)):  # items that clash with an earlier one in this block
            rivals = np.flatnonzero(inner[:j, j] & block_keep[:j])
            if rivals.size:
                block_keep[j] = False
                inner_sims = x[rivals] @ x[j]
                best_score[j] = inner_sims.max()
                best_kept[j] = start + rivals[inner_sims.argmax()]
        idx = start + np.flatnonzero(block_keep)
        keep[idx] = True
        kept_rows[m : m + len(idx)] = vectors[torch.as_tensor(idx, device=vectors.device)]
        kept_index[m : m + len(idx)] = idx
        kept_at[idx] = np.arange(m, m + len(idx))
        m += len(idx)
        for j in np.flatnonzero(~block_keep):
            removals.append(Removal(start + int(j), int(best_kept[j]), float(best_score[j])))
    return keep, removals


def settle(
    vectors: torch.Tensor,
    start: int,
    end: int,
    kept_rows: torch.Tensor,
    kept_index: np.ndarray,
    kept_at: np.ndarray,
    screen: Screen,
    threshold: float,
    key_block: int,
) -> None:
    """Refine rows until every pair of block rows start:end with a kept item or each other is decided (see the
    module docstring); kept_rows follows the kept items refined."""
    while True:
        x, dx = vectors[start:end], screen.delta[start:end]
        removed = np.zeros(end - start, dtype=bool)
        rows, partners = np.zeros(end - start, dtype=bool), np.zeros(len(kept_index), dtype=bool)
        if len(kept_index):
            kept_delta = screen.delta[torch.as_tensor(kept_index, device=vectors.device)]
            removed, rows, partners = undecided_with(x, dx, kept_rows, kept_delta, threshold, key_block)
        rows |= undecided_inside(x, dx, threshold, removed)
        todo = np.concatenate([start + np.flatnonzero(rows), kept_index[partners]])
        todo = todo[screen.delta[torch.as_tensor(todo, device=vectors.device)].cpu().numpy() > 0]
        if not todo.size:
            return
        screen.refine(todo)
        kept = todo[kept_at[todo] >= 0]
        kept_rows[torch.as_tensor(kept_at[kept], device=vectors.device)] = vectors[
            torch.as_tensor(kept, device=vectors.device)
        ]
