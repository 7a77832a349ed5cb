"""Checks on the raw YAML config that Axolotl would otherwise let through silently or fail on obscurely.

Axolotl drops unknown keys without a word, so a typo such as `nextai_reprot` would silently do nothing; and a
missing local dataset file is treated as a Hub id, which fails offline with a message about the network.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from axolotl_nextai.args import NextAIArgs

PREFIX = "nextai_"
LOCAL_DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow", ".txt")


class ConfigError(ValueError):
    """A config value that must be fixed before training; the message names the key."""


def validate_plugin_keys(cfg: Mapping) -> NextAIArgs:
    """Parse the `nextai_*` keys strictly: an unknown key or a wrong type is an error naming the key."""
    ours = {key: value for key, value in cfg.items() if key.startswith(PREFIX)}
    known = NextAIArgs.model_fields
    for key in ours:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else f" Known keys: {', '.join(sorted(known))}."
            raise ConfigError(f"unknown config key `{key}`.{hint}")
    try:
        return NextAIArgs.model_validate(ours, strict=True)
    except ValidationError as exc:
        problems = "; ".join(f"`{'.'.join(map(str, e['loc']))}`: {e['msg']} (got {e['input']!r})" for e in exc.errors())
        raise ConfigError(f"invalid value for {problems}") from None


def _is_local_file(dataset: Mapping) -> bool:
    path = str(dataset.get("path", ""))
    return path.endswith(LOCAL_DATA_SUFFIXES) or path.startswith(("/", "./", "../", "~"))


def build_hint(path: str) -> str:
    """How to create a missing dataset file: our mixtures are named v1..v7 (`data/v5.jsonl`)."""
    match = re.fullmatch(r"(v\d+)(?:[-_.].*)?", Path(path).stem)
    if match:
        return f"create it with: nextai-data build --mixture {match.group(1)} --out {path}"
    return "create it with `nextai-data build --mixture v5 --out <file>` or point `path:` at an existing file"


def check_dataset_files(cfg: Mapping) -> None:
    """Fail before any model loads when a local dataset file of `datasets:` does not exist."""
    for index, dataset in enumerate(cfg.get("datasets") or []):
        if not isinstance(dataset, Mapping) or not _is_local_file(dataset):
            continue
        path = str(dataset["path"])
        if not Path(path).expanduser().exists():
            raise ConfigError(
                f"datasets[{index}].path: dataset file `{path}` does not exist "
                f"(looked in {Path(path).expanduser().resolve()}); {build_hint(path)}"
            )
