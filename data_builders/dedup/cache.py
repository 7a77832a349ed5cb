"""Embeddings kept across builds (`--cache-dir`): building v4 after v5, or any mixture after another, embeds
only the rows not embedded before.

- Keyed by content and model: a vector is found by the sha1 of its text, in a folder per model name whose
  `model.json` holds the model's fingerprint (sha256 of its weights, tokenizer and modules,
  embed.fingerprint), written with the first vectors. A folder made by another model under the same name is
  refused in one line, never read; opening a cache writes nothing.
- One store per precision: `fp32` holds the vectors that decide (torch or OpenVINO fp32, either serves the
  other: within 1e-6), a low-precision encoder's store (`int8-...`) its own approximations, never mixed.
- Safe to share: every build that embeds new rows adds one shard file (`<precision>.<id>.npz`, written beside
  and renamed into place), so concurrent builds add to the cache without losing each other's rows and a reader
  never sees half a file. Above MAX_SHARDS a build merges the shards into one, then deletes those it merged; a
  reader that lists a shard a merge has just deleted lists again.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path

import numpy as np

from data_builders.atomic import atomic_write, unwritable
from data_builders.errors import DataError, first_line

MAX_SHARDS = 32
KEY = "S40"  # the text's sha1, hex


class EmbeddingCache:
    """The cache folder of one model (`folder`), whose fingerprint is checked on opening."""

    def __init__(self, folder: Path, model: str, fingerprint: str):
        self.folder, self.model, self.fingerprint = Path(folder), model, fingerprint
        self.identity = self.folder / "model.json"
        if (self.folder / "keys.npy").exists():
            raise DataError(
                f"--cache-dir: {self.folder} is an embedding cache of an earlier nextai-data (no model "
                "fingerprint); delete the folder to rebuild it"
            )
        self.check_identity()

    def check_identity(self) -> bool:
        """Whether the folder names its model yet; a DataError if it names another one."""
        try:
            known = json.loads(self.identity.read_text()) if self.identity.exists() else None
        except (OSError, ValueError) as err:
            raise DataError(
                f"--cache-dir: unreadable {self.identity} ({first_line(err)}); delete the folder to "
                "rebuild it"
            ) from None
        if known is not None and known.get("fingerprint") != self.fingerprint:
            raise DataError(
                f"--cache-dir: {self.folder} holds vectors of another model named {known.get('model')} "
                f"(fingerprint {str(known.get('fingerprint'))[:12]}, this one {self.fingerprint[:12]}): "
                "use another --cache-dir, or delete the folder"
            )
        return known is not None

    def shards(self, precision: str) -> list[Path]:
        return sorted(self.folder.glob(f"{precision}.*.npz"))

    def read(self, precision: str) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of every shard of `precision`; empty arrays when there are none. A shard that a
        merge deleted after it was listed is skipped: the merged shard, written before the deletion, is listed
        next."""
        parts: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        for _ in range(100):
            vanished = False
            for path in self.shards(precision):
                if path not in parts:
                    try:
                        parts[path] = self.read_shard(path)
                    except FileNotFoundError:
                        vanished = True
            if not vanished:
                break
        else:
            raise DataError(f"--cache-dir: {self.folder}: its {precision} shards kept changing while read")
        if not parts:
            return np.zeros(0, dtype=KEY), np.zeros((0, 0), dtype=np.float32)
        if not self.check_identity():
            raise DataError(
                f"--cache-dir: {self.folder} holds vectors but no model.json naming their model; delete "
                "the folder to rebuild it"
            )
        return np.concatenate([k for k, _ in parts.values()]), np.concatenate([v for _, v in parts.values()])

    def read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(path) as shard:
                keys, vectors = shard["keys"], shard["vectors"]
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise DataError(
                f"--cache-dir: corrupt embedding cache {path} ({first_line(err)}); delete it to rebuild it"
            ) from None
        if keys.dtype != np.dtype(KEY) or vectors.ndim != 2 or len(keys) != len(vectors):
            raise DataError(
                f"--cache-dir: corrupt embedding cache {path} ({len(keys)} keys, {vectors.shape} "
                "vectors); delete it to rebuild it"
            )
        return keys, vectors

    def lookup(self, precision: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors) for `keys`: rows not found are zero."""
        known_keys, known = self.read(precision)
        if not len(known_keys):
            return np.zeros(len(keys), dtype=bool), np.zeros((len(keys), 0), dtype=np.float32)
        row_of = {k: i for i, k in enumerate(known_keys.tolist())}
        at = np.array([row_of.get(k, -1) for k in keys.tolist()], dtype=np.int64)
        found = at >= 0
        out = np.zeros((len(keys), known.shape[1]), dtype=np.float32)
        out[found] = known[at[found]]
        return found, out

    def add(self, precision: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add a shard of `precision` (unless empty), naming the model first if the folder does not yet; merge
        the shards when there are more than MAX_SHARDS."""
        if not len(keys):
            return
        if not self.check_identity():
            with atomic_write(self.identity) as f:
                json.dump({"model": self.model, "fingerprint": self.fingerprint}, f, indent=2)
            self.check_identity()  # a concurrent build of another model may have named it first
        self.write_shard(precision, keys, vectors)
        shards = self.shards(precision)
        if len(shards) > MAX_SHARDS:
            keys, vectors = self.read(precision)
            keys, first = np.unique(keys, return_index=True)
            self.write_shard(precision, keys, vectors[first])
            for path in shards:
                path.unlink(missing_ok=True)

    def write_shard(self, precision: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys.astype(KEY), vectors=vectors.astype(np.float32))
        with atomic_write(self.folder / f"{precision}.{uuid.uuid4().hex}.npz", "wb") as f:
            f.write(buffer.getvalue())


def keys_of(texts: list[str]) -> np.ndarray:
    """The cache key of each text: its sha1, hex."""
    return np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts], dtype=KEY)


def open_cache(cache_dir: Path, model: str, fingerprint: str) -> EmbeddingCache:
    """The cache of `model` under `cache_dir` (its folder made with the first vectors), checked writable."""
    from data_builders.dedup.embed import model_folder

    folder = model_folder(cache_dir, model)
    if (why := unwritable(folder / "model.json")) is not None:
        raise DataError(f"--cache-dir: {why}")
    return EmbeddingCache(folder, model, fingerprint)
