"""The static prefilter on real rows (tests/assets/near_dup): it misses no MiniLM > 0.9 pair, so near-dedup
through it keeps exactly the rows the full MiniLM pass keeps; method and device choice; the neighbour
search."""

import json
from pathlib import Path

import numpy as np
import pytest

from data_builders.dedup import prefilter
from data_builders.dedup.embed import DEFAULT_MODEL, embed, resolve_device
from data_builders.dedup.stage import near_dedup, resolve_method
from data_builders.errors import DataError

ROWS = [json.loads(line) for line in (Path(__file__).parents[2] / "assets/near_dup/rows.jsonl").open()]
TEXTS = [r["text"] for r in ROWS]


@pytest.fixture(scope="session")
def static():
    """The static model distilled from the bundled MiniLM (about a minute the first time, then from the
    cache)."""
    return prefilter.static_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def minilm_pairs():
    vectors = embed(TEXTS)
    sims = np.triu(vectors @ vectors.T, k=1)
    return np.argwhere(sims > 0.9)


def test_every_minilm_pair_over_0_9_is_a_prefilter_pair(static, minilm_pairs):
    assert {ROWS[i]["source"] for i, _ in minilm_pairs} >= {"bbq", "mmlu", "lima"}  # the hard cases are there
    vectors = prefilter.static_embed(TEXTS, static)
    static_sims = np.einsum("ij,ij->i", vectors[minilm_pairs[:, 0]], vectors[minilm_pairs[:, 1]])
    assert static_sims.min() >= prefilter.THRESHOLD
    flagged = prefilter.with_neighbour(vectors)
    assert flagged[minilm_pairs].all()
    assert not flagged.all()  # the prefilter spares some rows, or it would be pointless


def test_prefilter_keeps_exactly_the_rows_the_full_pass_keeps(static):
    exact = near_dedup(TEXTS, method="exact", device="cpu")
    fast = near_dedup(TEXTS, method="prefilter", device="cpu")
    assert fast.keep.tolist() == exact.keep.tolist() and (~exact.keep).sum() > 0
    assert [(r.removed, r.kept) for r in fast.removals] == [(r.removed, r.kept) for r in exact.removals]
    assert fast.stats["rows_embedded"] < exact.stats["rows_embedded"] == len(TEXTS)


def test_embed_kept_gives_every_kept_row_its_minilm_vector(static):
    found = near_dedup(TEXTS, method="prefilter", device="cpu", embed_kept=True)
    assert found.embedded[found.keep].all()
    kept = np.flatnonzero(found.keep)[:5]
    assert np.allclose(found.vectors[kept], embed([TEXTS[i] for i in kept]), atol=1e-5)


def planted(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[rng.choice(n, 40, replace=False)] = x[rng.choice(n, 40)] + 0.2 * rng.standard_normal((40, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("block", [1, 7, 4096])
def test_blocked_neighbour_search_equals_the_dense_one(block):
    x = planted()
    sims = x @ x.T
    np.fill_diagonal(sims, -1)
    expected = (sims >= 0.8).any(axis=1)
    assert 0 < expected.sum() < len(x)
    assert prefilter.with_neighbour(x, 0.8, block=block).tolist() == expected.tolist()


def test_hnsw_neighbour_search_finds_the_planted_neighbours(monkeypatch):
    """HNSW is approximate and its graph depends on how its threads interleave, so a row whose best neighbour
    sits at the threshold may go either way: the planted pairs (cosine ~0.98) must all be found, and no row
    without a neighbour near the threshold (f16 vectors: ~1e-3 of rounding)."""
    x = planted()
    sims = x @ x.T
    np.fill_diagonal(sims, -1)
    best = sims.max(axis=1)
    monkeypatch.setattr(prefilter, "EXACT_ROWS", 10)  # 400 rows now go through usearch
    found = prefilter.with_neighbour(x, 0.8)
    assert (best >= 0.9).sum() >= 40 and found[best >= 0.9].all()
    assert not found[best < 0.8 - 2e-3].any()


def test_auto_is_exact_and_the_prefilter_refuses_an_uncalibrated_model():
    assert resolve_method("auto", DEFAULT_MODEL, 0.9) == "exact"
    assert resolve_method("prefilter", DEFAULT_MODEL, 0.9) == "prefilter"
    with pytest.raises(DataError, match="calibrated for"):
        resolve_method("prefilter", "some/model", 0.9)
    with pytest.raises(DataError, match="unknown near-dedup method"):
        resolve_method("minhash", DEFAULT_MODEL, 0.9)


def test_cuda_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(DataError, match="no CUDA GPU"):
        resolve_device("cuda")
