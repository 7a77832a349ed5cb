"""The runtime tests' runs: the tiny CPU recipe for STEPS steps on 32 rows of varied lengths, its report read
back, and the training processes found under a launcher (one per rank).

A plain module (not conftest) so that tests in any folder can import it: `from runtime_runs import ...`. The
reference run itself, shared by the one-process and the several-rank tests and served by the served-adapter
test, is a fixture in tests/axolotl_nextai/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import time

import psutil
from axolotl_launch import tiny_cpu_config

from axolotl_nextai.checks.cuda_only import LORA_KERNEL_KEYS
from axolotl_nextai.run.report import REPORT_NAME

STEPS = 16  # 2 epochs of 32 rows at 4 rows a step: time to interrupt, and a resume across epochs
EVERY = 2


def write_sample(path, rows: int):
    """`rows` Alpaca rows of varied lengths (so padding and tokens per step vary), the same for the same
    count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "instruction": f"Count from 1 to {n}.",
                "input": "" if n % 3 else f"step {n % 4 + 1}",
                "output": ", ".join(str(k) for k in range(1, n + 1)),
            }
        )
        for n in range(1, rows + 1)
    ]
    path.write_text("\n".join(lines) + "\n")


def runtime_config(tiny_model, work, **overrides):
    """tiny-cpu.yml for STEPS steps, LoRA kernel keys left unset (Axolotl would auto-enable them). LoRA
    dropout off: its random masks are drawn per rank, so only without it do one process and several ranks
    train the same numbers."""
    write_sample(work / "data" / "demo.jsonl", 32)
    settings = {
        "max_steps": STEPS,
        "nextai_report_every_steps": EVERY,
        "nextai_gpu_memory_cap_gb": 40.0,
        "nextai_time_budget_hours": 1.0,
        "nextai_time_budget_warmup_steps": 2,
        "lora_dropout": 0.0,
    }
    cfg = tiny_cpu_config(tiny_model, work, **{**settings, **overrides})
    for key in LORA_KERNEL_KEYS:
        cfg.pop(key)
    return cfg


def read_report(out):
    return json.loads((out / REPORT_NAME).read_text())


def per_step(report, key):
    """{step: value} from the report's history; cumulative token counts become per-step counts."""
    rows = report["history"]
    if key.endswith("tokens"):
        return {row["step"]: row[key] - (rows[i - 1][key] if i else 0) for i, row in enumerate(rows)}
    return {row["step"]: row[key] for row in rows}


def training_processes(launcher: subprocess.Popen, ranks: int, timeout: float) -> list[psutil.Process]:
    """The `python -m axolotl.cli.train` processes under the accelerate launcher, in rank order."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            child
            for child in psutil.Process(launcher.pid).children(recursive=True)
            if "axolotl.cli.train" in child.cmdline() and "accelerate.commands.launch" not in child.cmdline()
        ]
        if len(found) == ranks:
            return sorted(found, key=lambda process: int(process.environ().get("RANK", "0")))
        time.sleep(0.1)
    raise AssertionError(f"{ranks} training processes not found")


def wait_for_training(launcher: subprocess.Popen, out, log, ranks: int = 1) -> list[psutil.Process]:
    """The trainer processes, once the first report is written (EVERY steps in: training is under way)."""
    trainers = training_processes(launcher, ranks, timeout=120)
    deadline = time.monotonic() + 300
    while not (out / REPORT_NAME).exists():
        assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.05)
    return trainers
