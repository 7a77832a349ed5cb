"""Launching the real Axolotl CLI from tests: the tiny-cpu recipe moved into a temp dir, the launcher, and the
JSONL writer for the rows it trains on.

A plain module (not conftest) so that tests in any folder can import it: `from axolotl_launch import ...`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """`rows` as JSON Lines at `path` (parent folders made), for training data and task files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON Lines file, one dict a line (the inverse of `write_jsonl`)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def tiny_cpu_config(tiny_model: Path, workdir: Path, **overrides) -> dict:
    """recipes/tiny-cpu.yml with paths moved into `workdir`, then `overrides` applied."""
    cfg = yaml.safe_load((ROOT / "recipes" / "tiny-cpu.yml").read_text())
    cfg.update(
        base_model=str(tiny_model),
        output_dir=str(workdir / "out"),
        dataset_prepared_path=str(workdir / "prepared"),
    )
    cfg.update(overrides)
    return cfg


def train_command(cfg: dict, workdir: Path, ranks: int = 1) -> tuple[list[str], dict]:
    """Write `cfg` to `workdir/cfg.yml`; the `accelerate launch -m axolotl.cli.train` command and its env.
    With several `ranks`, `--multi_gpu --num_processes N`: torch's elastic agent starts N processes (on a
    machine without CUDA too; the plugin joins them in a gloo group). `--cpu` would not: it starts one
    process, or mpirun's."""
    cfg_path = workdir / "cfg.yml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    processes = ["--num_processes", "1"] if ranks == 1 else ["--multi_gpu", "--num_processes", str(ranks)]
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *processes,
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "axolotl.cli.train",
        str(cfg_path),
    ]
    return cmd, {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(ROOT)}


def launch_train(cfg: dict, workdir: Path, timeout: int = 600, ranks: int = 1) -> subprocess.CompletedProcess:
    """`accelerate launch -m axolotl.cli.train cfg.yml`, exactly as a user runs it, from `workdir`."""
    cmd, env = train_command(cfg, workdir, ranks)
    return subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def start_train(cfg: dict, workdir: Path, log: Path, ranks: int = 1) -> subprocess.Popen:
    """`launch_train` without waiting (for tests that signal the run); stdout and stderr go to `log`."""
    cmd, env = train_command(cfg, workdir, ranks)
    with log.open("w") as out:
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
