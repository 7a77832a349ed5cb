import numpy as np

from data_builders.dedup.embed import DEFAULT_MODEL, embed

TEXTS = ["What is the capital of France?", "Reverse a string in Python.", "What is the capital of France?"]


def test_unit_norm_and_duplicates_embed_identically():
    v = embed(TEXTS)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.array_equal(v[0], v[2])


def test_cache_stores_each_text_once_and_returns_the_same_vectors(tmp_path):
    fresh = embed(TEXTS)
    cached = embed(TEXTS, cache_dir=tmp_path)
    assert np.allclose(cached, fresh, atol=1e-5)
    folder = tmp_path / DEFAULT_MODEL.replace("/", "_")
    assert len(np.load(folder / "keys.npy")) == 2
    more = embed(["Name a prime number.", *TEXTS], cache_dir=tmp_path)
    assert len(np.load(folder / "keys.npy")) == 3
    assert np.array_equal(more[1:], cached)  # served from the cache, bit for bit
