"""The Axolotl config of one benchmark run: a recipe, or a named ablation of one (bench/gpu/ablations.yaml).

    python bench/gpu/run_config.py RUN --out CFG.yml [--set key=value ...]   # RUN: a recipe path or an ablation name
    python bench/gpu/run_config.py RUN --engine     # what trains it: axolotl, or bench/gpu/standalone.py's hf/unsloth

`--set` values are YAML (`--set max_steps=12 --set save_strategy='"no"'`: a bare `no` is false): written into the file, not passed to
Axolotl's CLI, which parses `--save_strategy no` as a boolean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ABLATIONS = Path(__file__).resolve().parent / "ablations.yaml"


def run_name(run: str) -> str:
    return Path(run).stem if run.endswith((".yml", ".yaml")) else run


def ablation(run: str) -> dict:
    """The ablation entry named `run` ({} for a recipe path); an unknown name lists the known ones."""
    if run.endswith((".yml", ".yaml")):
        return {}
    ablations = yaml.safe_load(ABLATIONS.read_text())
    if run not in ablations:
        raise SystemExit(f"{run!r} is neither a recipe file nor an ablation in {ABLATIONS}: {', '.join(ablations)}")
    return ablations[run]


def engine(run: str) -> str:
    """`axolotl` (the Axolotl CLI) unless the ablation names a bench/gpu/standalone.py engine."""
    return ablation(run).get("engine", "axolotl")


def load_run(run: str) -> dict:
    """The run's config: its recipe with the ablation's keys set (a key set to null is removed)."""
    entry = ablation(run)
    recipe = ROOT / entry["recipe"] if entry else Path(run)
    cfg = yaml.safe_load(recipe.read_text())
    for key, value in entry.get("set", {}).items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--engine", action="store_true", help="print what trains RUN and exit")
    args = parser.parse_args()
    if args.engine:
        print(engine(args.run))
        return
    if args.out is None:
        parser.error("--out is required")
    cfg = load_run(args.run)
    for item in args.set:
        key, _, value = item.partition("=")
        cfg[key] = yaml.safe_load(value)
    args.out.write_text(yaml.safe_dump(cfg, sort_keys=False))


if __name__ == "__main__":
    main()
