"""The Axolotl config of one benchmark run: a recipe, or a named ablation of one (bench/gpu/ablations.yaml).

    # RUN: a recipe path or an ablation name
    python bench/gpu/run_config.py RUN --out CFG.yml [--set key=value ...]
    # RUN:STEPS:GPUS a line, groups expanded
    python bench/gpu/run_config.py --specs @tables recipes/x.yml:20 ...
    # what trains it: axolotl, or bench/gpu/standalone.py's hf/unsloth
    python bench/gpu/run_config.py RUN --engine
    python bench/gpu/run_config.py RUN --out CFG.yml --cpu  # for gpu70b.sh's CPU check: what needs CUDA goes

`--set` values are YAML (`--set max_steps=12 --set save_strategy='"no"'`: a bare `no` is false): written into
the file, not passed to Axolotl's CLI, which parses `--save_strategy no` as a boolean.
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
        raise SystemExit(
            f"{run!r} is neither a recipe file nor an ablation in {ABLATIONS}: {', '.join(ablations)}"
        )
    return ablations[run]


def engine(run: str) -> str:
    """`axolotl` (the Axolotl CLI) unless the ablation names a bench/gpu/standalone.py engine."""
    return ablation(run).get("engine", "axolotl")


GROUPS = {"@tables": "paper"}  # a group: every ablation with this key, in the file's order


def run_specs(specs: list[str], default_steps: int) -> list[str]:
    """`RUN:STEPS:GPUS` for each spec, a group (`@tables`, or `@tables:3` for 3 steps each) expanded into its
    runs; steps from the spec, else the ablation's `steps`, else `default_steps`; GPUS (ranks, one a card)
    from the ablation's `gpus`, else 1."""
    ablations = yaml.safe_load(ABLATIONS.read_text())
    out = []
    for spec in specs:
        run, _, steps = spec.partition(":")
        if run in GROUPS:
            members = [name for name, entry in ablations.items() if GROUPS[run] in entry]
            out += run_specs([f"{name}:{steps}" if steps else name for name in members], default_steps)
            continue
        entry = ablation(run)
        out.append(f"{run}:{steps or entry.get('steps', default_steps)}:{entry.get('gpus', 1)}")
    return out


def moved_to(dataset: dict, data_dir: Path) -> dict:
    """A dataset entry reading `data/<file>` from `data_dir` (the bench's rows never overwrite a user's
    data/)."""
    path = Path(dataset["path"])
    return {**dataset, "path": str(data_dir / path.name)} if path.parts[:1] == ("data",) else dataset


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


def on_cpu(cfg: dict) -> list[str]:
    """Make a GPU run's config train on a CPU, for gpu70b.sh's check of a device command (GPUS=cpu): bf16 and
    tf32 off, Liger's plugin and keys out (Triton), flex attention's backward (CUDA only) replaced by SDPA.
    The rest, the plugin's levers included, stays. Returns what changed."""
    changed = [f"{key}: false" for key in ("bf16", "tf32") if cfg.get(key)]
    cfg.update(dict.fromkeys(("bf16", "tf32"), False))
    liger = [key for key in cfg if key.startswith("liger_")] + [
        plugin for plugin in cfg.get("plugins") or [] if "liger" in plugin.lower()
    ]
    for key in liger:
        cfg.pop(key, None)
    cfg["plugins"] = [plugin for plugin in cfg.get("plugins") or [] if plugin not in liger]
    changed += [f"{key} removed" for key in liger]
    if cfg.get("attn_implementation") == "flex_attention":
        cfg["attn_implementation"] = "sdpa"
        changed.append("attn_implementation: sdpa")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--data-dir", type=Path, help="read the recipe's data/<file> from this folder instead"
    )
    parser.add_argument(
        "--specs", nargs="+", metavar="RUN[:STEPS]", help="print each as RUN:STEPS, groups expanded"
    )
    parser.add_argument("--default-steps", type=int, default=12)
    parser.add_argument("--engine", action="store_true", help="print what trains RUN and exit")
    parser.add_argument("--cpu", action="store_true", help="drop what needs CUDA (gpu70b.sh's CPU check)")
    args = parser.parse_args()
    if args.specs:
        print("\n".join(run_specs(args.specs, args.default_steps)))
        return
    if args.run and args.engine:
        print(engine(args.run))
        return
    if not (args.run and args.out):
        parser.error("give RUN and --out (or --engine), or --specs")
    cfg = load_run(args.run)
    if args.data_dir:
        cfg["datasets"] = [moved_to(dataset, args.data_dir) for dataset in cfg["datasets"]]
    for item in args.set:
        key, _, value = item.partition("=")
        cfg[key] = yaml.safe_load(value)
    if args.cpu:
        print(f"{run_name(args.run)} on the CPU: {', '.join(on_cpu(cfg)) or 'as it is'}")
    args.out.write_text(yaml.safe_dump(cfg, sort_keys=False))


if __name__ == "__main__":
    main()
