"""The low-precision screen: fp32's kept set by construction. On real rows (tests/assets/near_dup) a bf16
screen (torch autocast: the code path a GPU's fp16 takes, here on the CPU) keeps exactly what fp32 keeps while
embedding most rows only in bf16; the bound holds on every pair; a low-precision error larger than the
calibration saw is caught and the bound widened; the undecided-pair search equals its definition."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_builders.dedup.near_dup import keep_first_seen, pair_bound, undecided_inside, undecided_with
from data_builders.dedup.screen import screened
from data_builders.dedup.stage import near_dedup, resolve_screen
from data_builders.errors import DataError

TEXTS = [
    json.loads(line)["text"] for line in (Path(__file__).parents[2] / "assets/near_dup/rows.jsonl").open()
]


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def rounded_minilm():
    """MiniLM with every weight rounded to bf16 and computing in fp32: a low precision with bf16's error size
    (row errors ~5e-3) at fp32's CPU speed (autocast bf16 is ~5x slower than fp32 on a CPU without bf16
    units)."""
    from sentence_transformers import SentenceTransformer

    from data_builders.dedup.embed import DEFAULT_MODEL, resolve_model

    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).float())
    return model


def test_a_screen_keeps_what_fp32_keeps_on_real_rows(monkeypatch, rounded_minilm):
    import data_builders.dedup.screen as screen_module
    from data_builders.dedup.embed import embed

    monkeypatch.setattr(screen_module, "CALIBRATION_MIN", 16)  # 64 rows: calibrate on a quarter, not all
    texts = TEXTS[:64]  # 28 of them near-duplicates, 42 pairs at cosine 0.88-0.92
    exact = embed(texts, encoder="torch")
    fp32_keep, fp32_removals = keep_first_seen(exact)

    def low(rows):
        return rounded_minilm.encode(rows, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)

    done = screened(texts, low, lambda rows: torch.from_numpy(embed(rows, encoder="torch")), 0.9)
    assert done.keep.tolist() == fp32_keep.tolist() and (~fp32_keep).sum() > 0
    assert [(r.removed, r.kept) for r in done.removals] == [(r.removed, r.kept) for r in fp32_removals]
    stats = done.stats
    assert 1e-3 < stats["bound"] < 0.05 and stats["widened"] == 0
    assert stats["rows_fp32"] < len(texts)  # not every row went to fp32
    delta = torch.where(done.exact, 0.0, stats["bound"])
    bound = pair_bound(delta, delta, 0.9).numpy()
    low_sims, true = (done.vectors @ done.vectors.T).numpy(), exact @ exact.T
    near = np.abs(true - 0.9) < 0.05
    assert (np.abs(low_sims - true)[near] <= bound[near] + 1e-6).all()  # the bound held near the threshold


def test_near_dedup_screens_in_autocast_precision_and_records_it():
    found = near_dedup(TEXTS[:6], device="cpu", encoder="torch", screen="bf16")
    assert found.stats["screen"] == "bf16" and found.stats["screen_stats"]["rows_low_precision"] == 6
    # auto: none on this CPU
    assert near_dedup(TEXTS[:6], device="cpu", encoder="torch").stats["screen"] is None


def test_an_error_larger_than_the_calibration_saw_widens_the_bound(monkeypatch):
    """Low precision = fp32 plus 1e-4 of noise, except one row outside the calibration sample whose
    low-precision cosine to its near-copy sits on the threshold (0.9) while fp32's is 0.91: re-embedding it
    shows an error the sample never saw, the bound widens, every pair is searched again, and the kept set is
    fp32's."""
    import data_builders.dedup.screen as screen_module

    monkeypatch.setattr(screen_module, "CALIBRATION_MIN", 10)
    rng = np.random.default_rng(0)
    base = unit(rng.standard_normal((200, 16)).astype(np.float32))
    # screened's draw
    sample = set(np.random.default_rng(0).choice(np.arange(200), 10, replace=False).tolist())
    k = next(i for i in range(199, 0, -1) if i not in sample and i - 1 not in sample)
    other = unit(base[k] - (base[k] @ base[k - 1]) * base[k - 1])  # orthogonal to its near-copy's source
    base[k] = 0.91 * base[k - 1] + np.sqrt(1 - 0.91**2) * other  # fp32: a duplicate of row k - 1
    low_vectors = unit(base + 1e-4 * rng.standard_normal(base.shape).astype(np.float32))
    low_vectors[k] = 0.9 * base[k - 1] + np.sqrt(1 - 0.9**2) * other  # low precision: on the threshold
    texts = [str(i) for i in range(200)]
    done = screened(
        texts,
        lambda rows: torch.from_numpy(low_vectors[[int(t) for t in rows]]),
        lambda rows: torch.from_numpy(base[[int(t) for t in rows]]),
        0.9,
    )
    assert done.stats["widened"] == 1 and done.stats["bound"] > 0.02  # 2 x the error of row k (~0.0104)
    assert done.exact[k] and done.keep.tolist() == keep_first_seen(base)[0].tolist()
    assert not done.keep[k]


def test_the_undecided_pairs_are_those_of_their_definition():
    rng = np.random.default_rng(1)
    x = unit(rng.standard_normal((40, 8)).astype(np.float32))
    x[1::2] = unit(x[::2] + 0.3 * rng.standard_normal((20, 8)).astype(np.float32))
    keys = unit(x[:30] + 0.2 * rng.standard_normal((30, 8)).astype(np.float32))
    dx, dk = rng.uniform(0, 0.05, 40).astype(np.float32), rng.uniform(0, 0.05, 30).astype(np.float32)
    gap = x @ keys.T - 0.9
    bound = pair_bound(torch.from_numpy(dx), torch.from_numpy(dk), 0.9).numpy()
    certain, unsure = (gap > bound).any(axis=1), (np.abs(gap) <= bound)
    rows = unsure.any(axis=1) & ~certain
    got = undecided_with(*map(torch.from_numpy, (x, dx, keys, dk)), 0.9, block=7)
    assert [g.tolist() for g in got] == [certain.tolist(), rows.tolist(), unsure[rows].any(axis=0).tolist()]
    inside = np.triu(np.abs(x @ x.T - 0.9) <= pair_bound(*(torch.from_numpy(dx),) * 2, 0.9).numpy(), k=1)
    inside &= ~certain[:, None] & ~certain[None, :]
    assert (
        undecided_inside(torch.from_numpy(x), torch.from_numpy(dx), 0.9, certain).tolist()
        == (inside.any(axis=0) | inside.any(axis=1)).tolist()
    )


def test_which_screen_auto_picks():
    assert resolve_screen("auto", "cuda", "torch") == "fp16"
    assert resolve_screen("off", "cuda", "torch") is None
    assert resolve_screen("bf16", "cpu", "torch") == "bf16"
    with pytest.raises(DataError, match="--screen fp16 runs through torch"):
        resolve_screen("fp16", "cpu", "openvino")
