"""Check a recipe offline, as the GPU it targets would see it, before a 17-hour run is spent on a typo.

    nextai-recipe-check [--world-size N] recipes/llama2-70b-v5.yml [more.yml ...]

Four checks: every key is one Axolotl or a listed plugin declares (Axolotl silently drops any other, so
`lora_alpah: 16` would train with the default alpha); `optimizer` names a real optimizer (Axolotl's schema
takes any string, and a misspelt one fails only when the Trainer is built, after the model has loaded); values
Axolotl does not bound are in range (`lora_r: -4`); then the plugins' `register` hooks and Axolotl's own
`validate_config`, the same calls `axolotl train` makes. `axolotl train` passes the probed GPU's capabilities,
which selects Axolotl's capability-aware schema (bf16 support, compute capability, fp8); a CUDA-less machine
would probe nothing useful, so we pass what one A100 reports and the recipe is checked as on its target GPU.
The check is about the recipe: a local file it names that does not exist yet (`data/v5.jsonl` on a fresh
clone, the base model folder, a checkpoint) is a warning here; training refuses it. `normalize_config` is left
out: it reads the base model's config.json, which is not offline.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from axolotl_nextai.checks.config_checks import (
    PREFIX,
    ConfigError,
    HookError,
    check_finite,
    missing_files,
    one_line,
    value_problems,
)
from axolotl_nextai.checks.multi_rank import rows_per_step, uses_fsdp
from data_builders.boundary import Guarded
from data_builders.errors import did_you_mean, first_line, single_line
from data_builders.files import InputFile

# What axolotl.cli.config.gpu_capabilities() reports on one A100 (sm_80: bf16 and tf32, no fp8).
A100_CAPABILITIES = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_80"}


def field_names(model_cls) -> set[str]:
    """A pydantic model's keys as a YAML may spell them: field names and their string aliases."""
    names = set(model_cls.model_fields)
    names |= {f.alias for f in model_cls.model_fields.values() if isinstance(f.alias, str)}
    return names


def unknown_keys(cfg: Mapping, known: set[str], dataset_known: set[str]) -> list[str]:
    """One message per key no config model declares, top level and in `datasets:`, with the nearest known
    key."""
    problems = []

    def report(where: str, key: str, pool: set[str]) -> None:
        problems.append(f"unknown key `{where}{key}`{did_you_mean(key, pool)}")

    for key in cfg:
        if key not in known:
            report("", key, known)
    datasets = cfg.get("datasets")
    for index, dataset in enumerate(datasets if isinstance(datasets, list) else []):  # else `value_problems`
        for key in dataset if isinstance(dataset, Mapping) else ():
            if key not in dataset_known:
                report(f"datasets[{index}].", key, dataset_known)
    return problems


def optimizer_names() -> set[str]:
    """Optimizers Axolotl can build: the Trainer's own and Axolotl's custom ones."""
    from axolotl.utils.schemas.enums import CustomSupportedOptimizers
    from transformers.training_args import OptimizerNames

    return {o.value for o in OptimizerNames} | {o.value for o in CustomSupportedOptimizers}


def unknown_optimizer(cfg: Mapping, known: set[str]) -> list[str]:
    """A message when `optimizer` is set to a name no Trainer knows, with the nearest real one."""
    name = cfg.get("optimizer")
    if not isinstance(name, str) or name in known:  # absent, or a type Axolotl's schema reports itself
        return []
    return [f"unknown optimizer `{name}`{did_you_mean(name, known)}"]


def known_keys() -> tuple[set[str], set[str]]:
    """Keys of Axolotl's config merged with every registered plugin's args, and of an SFT dataset entry."""
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.schemas.datasets import SFTDataset

    config_cls, _ = merge_input_args()
    return field_names(config_cls), field_names(SFTDataset)


def find_typos(cfg: Mapping) -> list[str]:
    """Unknown keys and optimizer names in `cfg`; needs its plugins registered (their keys count as known)."""
    return unknown_keys(cfg, *known_keys()) + unknown_optimizer(cfg, optimizer_names())


def unimportable_plugins(cfg: Mapping) -> list[str]:
    """One message per `plugins:` entry that does not import, found before Axolotl's PluginManager tries it
    (it prints a traceback and goes on without the plugin)."""
    from axolotl.integrations.base import load_plugin

    problems, listed = [], cfg.get("plugins")
    for index, name in enumerate(listed if isinstance(listed, list) else []):  # else Axolotl's schema says so
        try:
            load_plugin(str(name))
        # no module; no such class; no "module.Class"
        except (ImportError, AttributeError, ValueError) as err:
            problems.append(
                f"plugins[{index}] `{name}`: cannot load ({type(err).__name__}: {first_line(err)})"
            )
    return problems


def check_config(raw: Mapping, capabilities: Mapping = A100_CAPABILITIES, world_size: int = 1):
    """Axolotl's validated config for a recipe's parsed YAML, trained in `world_size` processes (unless the
    recipe sets `world_size`); ConfigError for unknown keys or optimizer, or a value out of range. Local files
    are not checked (see `missing_files`)."""
    import torch
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    unloadable = unimportable_plugins(raw)
    if unloadable:
        raise ConfigError("; ".join(unloadable))
    cfg = DictDefault(copy.deepcopy(dict(raw)))
    if world_size > 1:  # what the plugin's checks read (Axolotl sets it from WORLD_SIZE when training starts)
        cfg.setdefault("world_size", world_size)
    if any(str(name).startswith("axolotl_nextai") for name in cfg.get("plugins") or []) or any(
        str(key).startswith(PREFIX) for key in cfg
    ):
        cfg["nextai_check_datasets"] = False  # the plugin's file checks: warnings here, see `check_recipe`
    # Imports and registers the plugins (so their keys are known), then runs their register hooks.
    prepare_plugins(cfg)
    problems = find_typos(raw) + value_problems(raw)
    if problems:
        raise ConfigError("; ".join(problems))
    env = {"torch_version": torch.__version__.split("+", maxsplit=1)[0]}
    # Axolotl's own multi-GPU rules read the GPU count (one rank a GPU)
    validated = validate_config(cfg, capabilities={**capabilities, "n_gpu": world_size}, env_capabilities=env)
    check_finite(validated)
    return validated


def read_recipe(path: str | Path) -> dict:
    """A recipe's YAML as a mapping; ConfigError naming the file (and line) when it is not one, or not a
    regular file, or one `yaml_text.load_yaml` refuses (aliases expanding without bound, deep nesting, a key
    twice)."""
    from data_builders.errors import DataError
    from data_builders.files import read_text
    from data_builders.yaml_text import load_yaml

    try:
        raw = load_yaml(read_text(path), str(path))
    except DataError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(raw, dict):
        got = "it is empty" if raw is None else f"got {type(raw).__name__}"
        raise ConfigError(f"{path}: a recipe is a mapping of config keys; {got}")
    return raw


def check_recipe(
    path: str | Path, capabilities: Mapping = A100_CAPABILITIES, world_size: int = 1
) -> list[str]:
    """`check_config` on a YAML file; returns the warnings: local files it names that do not exist."""
    raw = read_recipe(path)
    check_config(raw, capabilities, world_size)
    return missing_files(raw)


@click.command(cls=Guarded, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipes", nargs=-1, required=True, type=InputFile())
@click.option(
    "--world-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes the recipes will train in (a lever not tested with several is refused).",
)
def main(recipes: tuple[str, ...], world_size: int) -> None:
    """Check each of RECIPES offline (keys, values, Axolotl's validation as on an A100); report every failure,
    not only the first; exit 1 if any failed. Local files that do not exist yet are warnings."""
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    failed = 0
    for path in recipes:
        try:
            warnings = check_recipe(path, world_size=world_size)
        # What a malformed recipe makes Axolotl's validation raise (a list where it wants a mapping:
        # TypeError).
        except (ValueError, TypeError, KeyError, AttributeError, OSError, HookError) as exc:
            failed += 1
            click.echo(f"FAILED  {path}: {single_line(one_line(exc))}")
            continue
        for warning in warnings:
            click.echo(f"warning {path}: {warning} (training refuses it)")
        raw = read_recipe(path)
        if uses_fsdp(raw) and world_size == 1:
            click.echo(
                f"warning {path}: FSDP with one process shards nothing: give the world size it trains at "
                "(--world-size N)"
            )
        ranks = (
            f" ({world_size} processes: {rows_per_step(raw, world_size)} rows a step)"
            if world_size > 1
            else ""
        )
        click.echo(f"ok      {path}{ranks}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
