"""fp32's near-duplicate decisions from low-precision vectors: fp32 embeds only the rows low precision cannot
decide.

A low-precision MiniLM vector u (fp16 or bf16) is close to the fp32 vector v of the same text; both unit norm,
e = u − v, δ = ‖e‖. For two rows whose fp32 cosine is c,

    u_i·u_j − c = v_i·e_j + e_i·v_j + e_i·e_j,  and by Cauchy-Schwarz |u_i·u_j − c| ≤ T = δ_i + δ_j + δ_iδ_j.

Tighter near the threshold t: u and v both unit gives v_i·e_i = −δ_i²/2, and v_j = c·v_i + √(1−c²)·w with w ⊥
v_i, so |e_i·v_j| ≤ |c|δ_i²/2 + √(1−c²)·δ_i. A cosine c on the other side of t than u_i·u_j lies within T of
t, so

    |u_i·u_j − c| ≤ B = √(1−(t−T)²)·(δ_i + δ_j) + (δ_i² + δ_j²)/2 + δ_iδ_j        (about half T at t = 0.9),

and a pair whose low-precision cosine is further than min(T, B) from the threshold (near_dup.pair_bound) falls
on the side fp32 puts it. First-seen-wins (near_dup.keep_first_seen) asks only about pairs that can change a
decision, a row with the items kept before it: before deciding a block of rows it embeds in fp32 (δ = 0) the
rows of the pairs low precision cannot decide, unless a decided pair already removes the row, until none is
left. Every decision is then fp32's: an undecided pair has both rows in fp32, any other pair is on fp32's
side. On 6,000 real rows (bench/near_dedup.py's) a bound of 0.002 sends 1.8 % of rows to fp32 this way, 0.015
sends 13 %; the rows of every undecided pair, decisive or not, would be 14 % and 41 %.

δ of a row is only known once it has both vectors, so the bound is measured on the run's own rows: a seeded
sample (CALIBRATION of them, at least CALIBRATION_MIN) embedded both ways gives the largest error, and every
row not in fp32 is given SAFETY times it (at least FLOOR: fp32 encoders differ by ~1e-6 among themselves).
Each row embedded in fp32 later (the undecided ones) checks the bound again; one over it widens the bound
(SAFETY times the new largest) and the walk starts over. A row over the bound that is in no undecided pair
goes unseen: the decisions are fp32's as far as SAFETY times the largest error measured bounds every row's.
The cosines that decide nothing (far from the threshold) stay low precision: the scores written for removed
pairs decided that way are within the bound of fp32's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from data_builders.dedup.near_dup import Removal, keep_first_seen

CALIBRATION = 0.02  # share of rows embedded both ways to measure the low-precision error
CALIBRATION_MIN = 128
SAFETY = 2.0  # the bound is this many times the largest error measured
FLOOR = 1e-5


class BoundExceeded(Exception):
    """A row embedded in fp32 was further from its low-precision vector than the bound allowed."""

    def __init__(self, largest: float):
        super().__init__(f"low-precision error {largest:.3g} over the bound")
        self.largest = largest


@dataclass
class Screen:
    """near_dup.Screen over `texts`: low-precision vectors, refined to fp32 by `exact` on request."""

    texts: list[str]
    vectors: torch.Tensor
    is_exact: torch.Tensor
    exact: Callable[[list[str]], torch.Tensor]
    bound: float = 0.0
    refined: int = 0

    @property
    def delta(self) -> torch.Tensor:
        return torch.where(self.is_exact, 0.0, self.bound)

    def refine(self, rows: np.ndarray) -> None:
        """Embed `rows` in fp32 in place; BoundExceeded if one was further off than the bound."""
        largest = self.embed_exact(rows)
        if largest > self.bound:
            raise BoundExceeded(largest)

    def embed_exact(self, rows: np.ndarray) -> float:
        """Embed `rows` in fp32 in place; the largest low-precision error among them."""
        if not len(rows):
            return 0.0
        at = torch.as_tensor(rows, device=self.vectors.device)
        fresh = self.exact([self.texts[i] for i in rows]).to(self.vectors.device).float()
        largest = float((self.vectors[at] - fresh).norm(dim=1).max())
        self.vectors[at], self.is_exact[at] = fresh, True
        self.refined += len(rows)
        return largest


@dataclass
class Screened:
    keep: np.ndarray
    removals: list[Removal]
    vectors: torch.Tensor  # unit norm; rows in `exact` are fp32's, the others low precision's
    exact: torch.Tensor  # bool per row
    stats: dict = field(default_factory=dict)


def screened(
    texts: list[str],
    low: Callable[[list[str]], torch.Tensor],
    exact: Callable[[list[str]], torch.Tensor],
    threshold: float,
    known: torch.Tensor | None = None,
    seed: int = 0,
) -> Screened:
    """First-seen-wins over `texts` with fp32's decisions: `low(texts)` for every row, `exact(texts)` (fp32)
    for a calibration sample and the rows of undecided pairs. Both return unit-norm float32 tensors, on one
    device. `known`: fp32 vectors already at hand (a cache's), rows of zeros where not; those rows go to
    neither."""
    started = time.perf_counter()
    n = len(texts)
    is_known = (known.abs().sum(dim=1) > 0).cpu() if known is not None else torch.zeros(n, dtype=torch.bool)
    todo = (~is_known).nonzero().flatten().numpy()
    if len(todo):
        fresh = low([texts[i] for i in todo]).float()
        vectors = (
            known.to(fresh.device).float().clone()
            if known is not None
            else torch.empty((n, fresh.shape[1]), dtype=torch.float32, device=fresh.device)
        )
        vectors[torch.as_tensor(todo, device=fresh.device)] = fresh
    else:
        vectors = known.float().clone()
    low_seconds = time.perf_counter() - started
    screen = Screen(texts, vectors, is_known.to(vectors.device).clone(), exact)
    sample = (
        np.sort(
            np.random.default_rng(seed).choice(
                todo, min(len(todo), max(CALIBRATION_MIN, round(CALIBRATION * len(todo)))), replace=False
            )
        )
        if len(todo)
        else todo
    )
    screen.bound = max(FLOOR, SAFETY * screen.embed_exact(sample))
    widened = 0
    while True:
        try:
            keep, removals = keep_first_seen(vectors, threshold, screen=screen)
            break
        except BoundExceeded as err:  # the sample missed a larger error: widen the bound, walk again
            screen.bound, widened = SAFETY * err.largest, widened + 1
    stats = {
        "rows_fp32_cached": int(is_known.sum()),
        "rows_low_precision": len(todo),
        "calibration_rows": len(sample),
        "bound": round(screen.bound, 6),
        "widened": widened,
        "rows_fp32": screen.refined,
        "low_precision_seconds": round(low_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return Screened(keep, removals, vectors, screen.is_exact, stats)
