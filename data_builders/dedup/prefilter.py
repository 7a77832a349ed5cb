"""Step 0 on a CPU: a static-embedding prefilter that spares MiniLM the rows that have no near-duplicate.

MiniLM is nearly all of a CPU build (~20 rows per CPU-second). A static model distilled from the same MiniLM
(model2vec's `distill`: every word piece embedded once by MiniLM, PCA to 256 dimensions; a text is the
weighted mean of its word pieces) embeds thousands of rows per CPU-second. On every benchmark set measured
(BBQ, MMLU, LIMA; 280,000 pairs at MiniLM cosine > 0.9), each such pair had a static cosine of at least 0.667
(an MMLU question reworded: "According to Hobbes, the definition of injustice is" / "Hobbes defines injustice
as"; BBQ's template pairs went down to 0.779), so a row whose static cosine to every other row is below
THRESHOLD is in no such pair, and first-seen-wins keeps it whatever the others are. Only the other rows need
MiniLM, and the exact pass over them (near_dup.keep_first_seen, in item order) gives the kept set the full
pass gives: every MiniLM > 0.9 pair lies inside that subset.

The distilled model is built once per MiniLM (about a minute on two cores) and kept in a cache folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders.dedup.embed import CHUNK, model_folder, resolve_device, resolve_model

THRESHOLD = 0.65  # static cosine; the lowest seen for a MiniLM > 0.9 pair was 0.667 (MMLU)
MAX_TOKENS = 256  # the word pieces MiniLM reads; the static model reads the same window
PCA_DIMS = 256
EXACT_ROWS = 200_000  # above this, neighbours come from an HNSW index (usearch) instead of blocked products


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/nextai-data (~/.cache/nextai-data): where the distilled model is kept between
    builds."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nextai-data"


def static_model(model: str, cache_dir: Path | None = None, device: str = "cpu", progress: bool = False):
    """The static model distilled from `model`, from `cache_dir/static/<model>` or distilled there now."""
    from model2vec import StaticModel

    folder = model_folder(Path(cache_dir or default_cache_dir()) / "static", model)
    if not (folder / "model.safetensors").is_file():
        from model2vec.distill import distill

        distilled = distill(resolve_model(model), device=resolve_device(device), pca_dims=PCA_DIMS)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:  # a whole folder or none: a concurrent or interrupted build never reads a half-written model
            distilled.save_pretrained(tmp)
            if folder.exists():  # another build got there first
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return StaticModel.from_pretrained(folder)


def static_embed(texts: list[str], static, progress: bool = False) -> np.ndarray:
    """Unit-norm float32 static embeddings of `texts`, MiniLM's 256 word-piece window each."""
    out = np.zeros((len(texts), static.dim), dtype=np.float32)
    with tqdm(total=len(texts), desc="embed static", unit="row", disable=not progress) as bar:
        for start in range(0, len(texts), CHUNK * 8):
            chunk = texts[start : start + CHUNK * 8]
            out[start : start + len(chunk)] = static.encode(chunk, max_length=MAX_TOKENS)
            bar.update(len(chunk))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1)


def with_neighbour(
    vectors: np.ndarray, threshold: float = THRESHOLD, block: int = 4096, progress: bool = False
) -> np.ndarray:
    """For each unit-norm row, whether another row reaches cosine `threshold` with it.

    Exact blocked products over the upper triangle (each pair once) up to EXACT_ROWS rows; above, each row's
    nearest neighbours from an HNSW index (usearch), which can miss a neighbour: the benchmark measures it.
    """
    n = len(vectors)
    if n > EXACT_ROWS:
        return ann_with_neighbour(vectors, threshold, progress)
    found = np.zeros(n, dtype=bool)
    with tqdm(total=n, desc="prefilter", unit="row", disable=not progress) as bar:
        for r in range(0, n, block):
            sims = vectors[r : r + block] @ vectors[r:].T
            np.fill_diagonal(sims, -1)  # a row is not its own neighbour (diagonal of the first square)
            hits = sims >= threshold
            found[r : r + block] |= hits.any(axis=1)
            found[r:] |= hits.any(axis=0)
            bar.update(min(block, n - r))
    return found


def ann_with_neighbour(
    vectors: np.ndarray, threshold: float, progress: bool = False, count: int = 4
) -> np.ndarray:
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="ip", dtype="f16")
    index.add(
        np.arange(len(vectors)), vectors, progress=tqdm_progress("index", len(vectors)) if progress else None
    )
    matches = index.search(
        vectors, count=count, progress=tqdm_progress("neighbours", len(vectors)) if progress else None
    )
    keys, sims = matches.keys, 1 - matches.distances  # usearch's inner-product distance is 1 - dot
    other = keys != np.arange(len(vectors))[:, None]
    return ((sims >= threshold) & other).any(axis=1)


def tqdm_progress(desc: str, total: int):
    """A usearch progress callback (processed, total) -> keep going, drawn as a tqdm bar."""
    bar = tqdm(total=total, desc=desc, unit="row")

    def update(processed: int, _total: int) -> bool:
        bar.update(processed - bar.n)
        if processed >= total:
            bar.close()
        return True

    return update
