"""Prepared-data cache keyed by dataset content, not only by path.

Axolotl stores tokenized data in `<dataset_prepared_path>/<md5>`, the md5 of dataset paths and settings
(`generate_dataset_hash_from_config` in axolotl/utils/data/shared.py), never of file contents: a regenerated
`data/v5.jsonl` would silently train on the old tokens. The lever chosen: `register(cfg)` points
`dataset_prepared_path` at a subfolder named after the sha256 of every local dataset file. It uses the key
for exactly what it is for, works whatever fields a given Axolotl version hashes, and covers `axolotl
preprocess` too, which runs the same hook. Rejected: writing the hash into a per-dataset field Axolotl hashes
(`revision` would be hashed, but it names a Hub git revision and would be sent to the Hub if the file went
missing). Old subfolders are left in place; delete them when disk runs short.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from data_builders.sources.base import file_sha256

DEFAULT_PREPARED_PATH = "last_run_prepared"  # axolotl.common.const.DEFAULT_DATASET_PREPARED_PATH
FOLDER_PREFIX = "data-sha256-"
DIGEST_CHARS = 16


def local_dataset_paths(cfg: Mapping) -> list[Path]:
    """Dataset paths of `datasets` and `test_datasets` that exist on disk (Axolotl's own test for local)."""
    entries = [
        entry for key in ("datasets", "test_datasets") if isinstance(cfg.get(key), list) for entry in cfg[key]
    ]
    paths = [
        Path(str(entry["path"])) for entry in entries if isinstance(entry, Mapping) and entry.get("path")
    ]
    return [path for path in paths if path.exists()]


def content_digest(paths: list[Path]) -> str | None:
    """sha256 over each path and its files' sha256 (a folder: every file in it); None without local data."""
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{file}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def content_keyed_path(prepared_path: str | None, digest: str) -> str:
    """`<prepared_path>/data-sha256-<digest[:16]>`; unchanged if it already ends in that folder."""
    base = Path(prepared_path or DEFAULT_PREPARED_PATH)
    folder = f"{FOLDER_PREFIX}{digest[:DIGEST_CHARS]}"
    return str(base if base.name == folder else base / folder)
