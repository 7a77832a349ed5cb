"""Step 2: first-seen-wins selection at a cosine threshold, with blocked matrix products.

The rule is Platypus': walk the items in order and keep one only if its cosine to every item kept so far is
at most the threshold (0.9). Walking one item at a time costs a matrix-vector product per item against the
whole kept set. Here a block of B items is compared with the kept set in one matrix product, and the few
items that still conflict inside the block are resolved in order, so the Python loop runs only over
in-block conflicts, never over the kept set. The kept set is the one the item-by-item walk gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.9  # Platypus: remove an item whose cosine to an earlier kept item is > 0.9


@dataclass(frozen=True)
class Removal:
    removed: int  # index of the removed item
    kept: int  # index of the kept item it is closest to
    score: float  # their cosine


def nearest(x: np.ndarray, keys: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of each row's most similar row of `keys` (the first on ties), for unit-norm rows.

    Rows and keys go in blocks, so a pass over 60k x 60k never holds more than block x block scores.
    """
    best_at = np.zeros(len(x), dtype=np.int64)
    best_score = np.full(len(x), -np.inf, dtype=np.float32)
    for r in range(0, len(x), block):
        at, score = best_at[r:r + block], best_score[r:r + block]  # views: updated in place
        for c in range(0, len(keys), block):
            sims = x[r:r + block] @ keys[c:c + block].T
            col = sims.argmax(axis=1)
            top = sims[np.arange(len(sims)), col]
            better = top > score
            at[better], score[better] = c + col[better], top[better]
    return best_at, best_score


def keep_first_seen(embeddings: np.ndarray, threshold: float = THRESHOLD, block: int = 1024) -> tuple[np.ndarray, list[Removal]]:
    """(keep mask, removals in item order) for unit-norm `embeddings` (n x d)."""
    n = len(embeddings)
    keep = np.zeros(n, dtype=bool)
    kept_rows = np.empty_like(embeddings)  # embeddings of kept items, in order
    kept_index = np.empty(n, dtype=np.int64)
    m = 0
    removals: list[Removal] = []
    for start in range(0, n, block):
        x = embeddings[start:start + block]
        best_score = np.full(len(x), -np.inf, dtype=np.float32)
        best_kept = np.full(len(x), -1, dtype=np.int64)
        if m:
            best_at, best_score = nearest(x, kept_rows[:m])
            best_kept = kept_index[best_at]
        alive = best_score <= threshold
        inner = np.triu(x @ x.T > threshold, k=1) & alive[:, None] & alive[None, :]
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
        kept_rows[m:m + len(idx)] = embeddings[idx]
        kept_index[m:m + len(idx)] = idx
        m += len(idx)
        for j in np.flatnonzero(~block_keep):
            removals.append(Removal(start + int(j), int(best_kept[j]), float(best_score[j])))
    return keep, removals
