import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_builders.dedup.cache import MAX_SHARDS, open_cache
from data_builders.dedup.embed import DEFAULT_MODEL, embed, fingerprint, model_folder
from data_builders.errors import DataError

TEXTS = ["What is the capital of France?", "Reverse a string in Python.", "What is the capital of France?"]


def test_unit_norm_and_duplicates_embed_identically():
    v = embed(TEXTS)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.array_equal(v[0], v[2])


def test_cache_stores_each_text_once_and_a_later_build_embeds_only_new_rows(tmp_path):
    fresh = embed(TEXTS)
    cached = embed(TEXTS, cache_dir=tmp_path)
    assert np.allclose(cached, fresh, atol=1e-5)
    cache = open_cache(tmp_path, DEFAULT_MODEL, fingerprint(DEFAULT_MODEL))
    assert len(cache.read("fp32")[0]) == 2 and len(cache.shards("fp32")) == 1
    more = embed(["Name a prime number.", *TEXTS], cache_dir=tmp_path)
    assert len(cache.read("fp32")[0]) == 3 and len(cache.shards("fp32")) == 2  # one shard more: the new row
    assert np.array_equal(more[1:], cached)  # served from the cache, bit for bit
    embed(TEXTS, cache_dir=tmp_path)
    assert len(cache.shards("fp32")) == 2  # nothing new, nothing written


def test_a_cache_made_by_another_model_of_the_same_name_is_refused_in_one_line(tmp_path):
    folder = model_folder(tmp_path, DEFAULT_MODEL)
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"model": DEFAULT_MODEL, "fingerprint": "f" * 64}))
    with pytest.raises(
        DataError,
        match=r"^--cache-dir: .* holds vectors of another model named "
        r"sentence-transformers/all-MiniLM-L6-v2 \(fingerprint ffffffffffff, this "
        r"one [0-9a-f]{12}\): use another --cache-dir, or delete the folder$",
    ):
        embed(TEXTS, cache_dir=tmp_path)


def test_shards_merge_past_the_limit_and_keep_every_row(tmp_path):
    cache = open_cache(tmp_path, "m", "f")
    for i in range(MAX_SHARDS + 1):
        cache.add("fp32", np.array([f"{i:040x}"], "S40"), np.full((1, 2), i, np.float32))
    keys, vectors = cache.read("fp32")
    assert len(cache.shards("fp32")) == 1 and len(keys) == MAX_SHARDS + 1
    assert vectors[:, 0].tolist() == sorted(vectors[:, 0].tolist())  # merged in key order, each row its own


def test_concurrent_builds_lose_none_of_each_others_rows(tmp_path):
    """Four processes add to one cache at once: every row of each is there after."""
    code = (
        "import sys, numpy as np\nfrom data_builders.dedup.cache import open_cache\n"
        "cache = open_cache(sys.argv[1], 'm', 'f')\n"
        "for i in range(10):\n"
        "    cache.add('fp32', np.array([f'{sys.argv[2]}{i:039x}'], 'S40'), np.ones((1, 2), np.float32))\n"
        "    cache.read('fp32')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(p)], env=env) for p in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    keys, _ = open_cache(tmp_path, "m", "f").read("fp32")
    assert len(set(keys.tolist())) == 40
