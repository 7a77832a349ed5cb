"""Checks on the raw YAML config that Axolotl would otherwise let through silently or fail on obscurely.

Axolotl drops unknown keys without a word, so a typo such as `nextai_reprot` would silently do nothing; its
schema types `lora_r` or `micro_batch_size` but does not bound them, so `lora_r: -4` fails only after the
model has loaded; a missing local dataset file is treated as a Hub id, which fails offline with a message
about the network; a row without `output` fails inside the prompt strategy as a TypeError. Each check here
names the key (and the file:line).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from axolotl_nextai.args import NextAIArgs
from axolotl_nextai.models.checkpoint import looks_local
from data_builders.errors import did_you_mean, first_line, single_line, validation_problem
from data_builders.numbers import is_finite, non_finite

PREFIX = "nextai_"
LOCAL_DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".arrow", ".txt")
ALPACA_TYPE = "axolotl_nextai.alpaca"
# Keys Axolotl types but does not bound, each with the range a run needs: (lowest, lowest allowed?, highest).
BOUNDS = {
    "lora_r": (0, False, None),
    "lora_alpha": (0, False, None),
    "lora_dropout": (0, True, 1),
    "micro_batch_size": (0, False, None),
    "gradient_accumulation_steps": (0, False, None),
    "sequence_len": (0, False, None),
    "num_epochs": (0, False, None),
    "learning_rate": (0, False, None),
    "warmup_steps": (0, True, None),
    "weight_decay": (0, True, None),
    "save_steps": (0, False, None),
    "logging_steps": (0, False, None),
    "val_set_size": (0, True, None),
}


# What the Trainer resumes besides the weights; a folder without them resumes with a fresh optimizer,
# scheduler or step count, and says nothing. optimizer.bin / optimizer_0: accelerate's FSDP forms of
# optimizer.pt.
RESUME_STATE = {
    "trainer_state.json": ("trainer_state.json",),
    "scheduler.pt": ("scheduler.pt",),
    "optimizer.pt": ("optimizer.pt", "optimizer.bin", "optimizer_0"),
}


class ConfigError(ValueError):
    """A config value that must be fixed before training; the message names the key."""


class HookError(Exception):
    """An exception no check of ours caught, raised in one of the plugin's hooks: printed in one line."""


def one_line(exc: BaseException) -> str:
    """A config error as one line: pydantic's errors as "`key`: message (got value)", else the first line."""
    if isinstance(exc, ValidationError):
        return validation_problem(exc)
    return first_line(exc)


def report_config_errors_in_one_line() -> None:
    """Make an uncaught config error end the training CLI with one line (exit 1), not a traceback: ours, and
    Axolotl's schema errors. Any other exception keeps its traceback."""
    previous = sys.excepthook
    if getattr(previous, "one_line_config_errors", False):
        return

    def hook(kind, exc, tb):
        if isinstance(exc, ConfigError) or (
            isinstance(exc, ValidationError) and exc.title.startswith("Axolotl")
        ):
            print(f"config error: {single_line(one_line(exc))}", file=sys.stderr)
        elif isinstance(exc, HookError):
            print(f"error: {single_line(str(exc))}", file=sys.stderr)
        else:
            previous(kind, exc, tb)

    hook.one_line_config_errors = True
    sys.excepthook = hook


def plugin_key_problems(cfg: Mapping) -> list[str]:
    """One message per unknown `nextai_*` key (naming the closest known one), and per value of the wrong
    type."""
    ours = {key: value for key, value in cfg.items() if key.startswith(PREFIX)}
    known = NextAIArgs.model_fields
    listing = f" (known keys: {', '.join(sorted(known))})"
    problems = [
        f"unknown config key `{key}`{did_you_mean(key, known) or listing}" for key in ours if key not in known
    ]
    try:
        NextAIArgs.model_validate({key: value for key, value in ours.items() if key in known}, strict=True)
    except ValidationError as exc:
        problems.append(f"invalid value for {one_line(exc)}")
    return problems


def validate_plugin_keys(cfg: Mapping) -> NextAIArgs:
    """Parse the `nextai_*` keys strictly: an unknown key or a wrong type is an error naming the key."""
    problems = plugin_key_problems(cfg)
    if problems:
        raise ConfigError("; ".join(problems))
    return NextAIArgs.model_validate(
        {key: value for key, value in cfg.items() if key.startswith(PREFIX)}, strict=True
    )


def finite_problems(cfg: Mapping) -> list[str]:
    """One message per NaN or infinite number anywhere in `cfg`."""
    return [f"`{key}`: must be a finite number (got {value})" for key, value in non_finite(dict(cfg))]


def check_finite(cfg: Mapping) -> None:
    """ConfigError for a NaN or infinite value in a config Axolotl has validated: its schema reads the string
    `learning_rate: nan` (YAML's NaN is `.nan`) or `--learning_rate inf` as a float, after `register` saw a
    string."""
    problems = finite_problems(cfg)
    if problems:
        where = cfg.get("axolotl_config_path")
        raise ConfigError((f"{where}: " if where else "") + "; ".join(problems))


def value_problems(cfg: Mapping) -> list[str]:
    """One message per NaN or infinite number anywhere in `cfg`, per value out of its range (`BOUNDS`), and
    per `datasets:` that is not a list of mappings."""
    problems = finite_problems(cfg)
    for key, (low, low_allowed, high) in BOUNDS.items():
        value = cfg.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not is_finite(value):
            continue  # absent, not finite (said above), or a type Axolotl's schema reports itself
        if value < low or (value == low and not low_allowed) or (high is not None and value >= high):
            wanted = f"{'>=' if low_allowed else '>'} {low}" + (f" and < {high}" if high is not None else "")
            problems.append(f"`{key}`: must be {wanted} (got {value!r})")
    datasets = cfg.get("datasets")
    if datasets is not None and (
        not isinstance(datasets, list) or not all(isinstance(d, Mapping) for d in datasets)
    ):
        problems.append(
            f"`datasets`: must be a list of entries such as {{path: data/v5.jsonl, type: {ALPACA_TYPE}}}"
        )
    return problems


def _is_local_file(dataset: Mapping) -> bool:
    path = str(dataset.get("path", ""))
    return path.endswith(LOCAL_DATA_SUFFIXES) or path.startswith(("/", "./", "../", "~"))


def local_datasets(cfg: Mapping) -> list[tuple[int, Mapping]]:
    """(index, entry) of each `datasets:` entry that names a local file."""
    datasets = cfg.get("datasets")
    if not isinstance(datasets, list):
        return []
    return [(i, d) for i, d in enumerate(datasets) if isinstance(d, Mapping) and _is_local_file(d)]


def build_hint(path: str) -> str:
    """How to create a missing dataset file: our mixtures are named v1..v7 (`data/v5.jsonl`)."""
    match = re.fullmatch(r"(v\d+)(?:[-_.].*)?", Path(path).stem)
    if match:
        return f"create it with: nextai-data build --mixture {match.group(1)} --out {path}"
    return "create it with `nextai-data build --mixture v5 --out <file>` or point `path:` at an existing file"


def missing_files(cfg: Mapping) -> list[str]:
    """One message per local path the run reads that does not exist: dataset files, a base model folder, the
    checkpoint to resume from."""
    problems = []
    for index, dataset in local_datasets(cfg):
        path = str(dataset["path"])
        if not Path(path).expanduser().exists():
            problems.append(
                f"datasets[{index}].path: dataset file `{path}` does not exist "
                f"(looked in {Path(path).expanduser().resolve()}); {build_hint(path)}"
            )
    for key in ("base_model", "resume_from_checkpoint"):
        value = cfg.get(key)
        if isinstance(value, str) and looks_local(value) and not Path(value).expanduser().exists():
            problems.append(
                f"`{key}`: `{value}` does not exist (looked in {Path(value).expanduser().resolve()})"
            )
    checkpoint = cfg.get("resume_from_checkpoint")
    if isinstance(checkpoint, str) and Path(checkpoint).expanduser().is_dir():
        folder = Path(checkpoint).expanduser()
        lacking = [
            name for name, forms in RESUME_STATE.items() if not any((folder / f).exists() for f in forms)
        ]
        if lacking:
            problems.append(
                f"`resume_from_checkpoint`: `{checkpoint}` has no {' or '.join(lacking)}: the Trainer "
                "would go on with a fresh one, silently; give a checkpoint-N folder it saved, or start "
                "over from these weights with `lora_model_dir` instead"
            )
    return problems


def plugin_problems(cfg: Mapping, loaded) -> list[str]:
    """One message per `plugins:` entry not among `loaded` (what Axolotl's PluginManager imported): Axolotl
    prints a traceback for it and trains on without it."""
    listed = cfg.get("plugins")
    return [
        f"plugins[{index}] `{name}`: did not import (see the error above it); fix the name or "
        "remove the entry"
        for index, name in enumerate(listed if isinstance(listed, list) else [])
        if name not in loaded
    ]


def alpaca_row_problems(cfg: Mapping) -> list[str]:
    """The first row of each local `type: axolotl_nextai.alpaca` file that the prompt strategy cannot read:
    `instruction` and `output` strings, `input` a string or absent/null."""
    from data_builders.errors import DataError
    from data_builders.sources.base import FILE_SUFFIXES, check_row, read_file

    problems = []
    for index, dataset in local_datasets(cfg):
        path = Path(str(dataset["path"])).expanduser()
        if dataset.get("type") != ALPACA_TYPE or not path.is_file() or path.suffix not in FILE_SUFFIXES:
            continue
        try:
            rows, _ = read_file(path)
            for where, row in rows:
                if isinstance(row, Exception):
                    raise row
                check_row(row, {"instruction": str, "output": str}, where)
                if row.get("input") is not None:
                    check_row(row, {"input": str}, where)
        except DataError as err:
            problems.append(f"datasets[{index}]: {err}")
    return problems
