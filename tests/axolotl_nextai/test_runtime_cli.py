"""The plugin runtime through the real `accelerate launch -m axolotl.cli.train` on the tiny CPU model.

Six launches in all: a reference run checked for the report, the CUDA-only rule and the memory cap; an
interrupted run and its resumption compared with the reference; a run that hits a tiny time budget; two runs
around a regenerated dataset file.
"""

import json
import signal
import subprocess
import sys
import time
from importlib import resources

import psutil
import pytest
import torch
from axolotl_launch import launch_train, start_train, tiny_cpu_config
from datasets import load_from_disk
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from axolotl_nextai.cuda_only import LORA_KERNEL_KEYS
from axolotl_nextai.report import PLOT_NAME, REPORT_NAME, TABLE_NAME

pytestmark = pytest.mark.slow
STEPS = 16  # 2 epochs of the 32-row sample at 4 rows a step: time to interrupt, and a resume across epochs
EVERY = 2


def write_sample(path, rows: int):
    """The first `rows` rows of the bundled Alpaca sample."""
    lines = resources.files("data_builders").joinpath("sample/alpaca_demo.jsonl").read_text("utf-8").splitlines()
    assert len(lines) >= rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines[:rows]) + "\n")


def runtime_config(tiny_model, work, **overrides):
    """tiny-cpu.yml for STEPS steps, LoRA kernel keys left unset (Axolotl would auto-enable them)."""
    write_sample(work / "data" / "demo.jsonl", 32)
    settings = {"max_steps": STEPS, "nextai_report_every_steps": EVERY, "nextai_gpu_memory_cap_gb": 40.0,
                "nextai_time_budget_hours": 1.0, "nextai_time_budget_warmup_steps": 2}
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


@pytest.fixture(scope="module")
def reference(tiny_model, tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    result = launch_train(runtime_config(tiny_model, work), work)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return work, log, read_report(work / "out")


def test_report_kernels_and_memory_cap(reference, tiny_model):
    work, log, report = reference
    out = work / "out"
    # CUDA-only rule: the unset kernel keys were turned off with one warning and training ran on the CPU.
    assert log.count("Axolotl's LoRA kernels are off") == 1
    assert "lora_qkv_kernel, lora_o_kernel, lora_mlp_kernel, lora_embedding_kernel set false" in log
    assert "nextai_gpu_memory_cap_gb: 40.0 GB asked, but there is no CUDA device" in log
    assert f"nextai report: step {EVERY}/{STEPS}" in log and "time budget: projected finish" in log

    assert report["finished"] and report["stop_reason"] is None
    assert report["global_step"] == STEPS and report["steps"] == STEPS and report["loss_finite"]
    assert report["device"] == "cpu" and report["peak_memory_allocated_gib"] is None
    assert report["peak_memory_reserved_gib"] is None

    adapter = load_file(out / "adapter_model.safetensors")
    assert report["trainable_params"] == sum(t.numel() for t in adapter.values())
    # N from the 4-bit model equals the unquantized checkpoint's linear weights: packed NF4 counted in full.
    plain = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert report["linear_params"] == sum(m.weight.numel() for m in plain.modules() if isinstance(m, torch.nn.Linear))

    # Real tokens: every token of every prepared row, STEPS / steps_per_epoch times; padding left out.
    prepared = load_from_disk(str(next((work / "prepared").glob("data-sha256-*/*/dataset_info.json")).parent))
    epochs = STEPS // report["steps_per_epoch"]
    assert report["dataset_rows"] == len(prepared) == 32 and epochs == 2
    assert report["real_tokens"] == epochs * sum(len(ids) for ids in prepared["input_ids"])
    assert report["trained_tokens"] == epochs * sum(sum(t != -100 for t in row) for row in prepared["labels"])
    assert report["tokens_per_s"] > 0
    assert report["mfu"] == pytest.approx(6 * report["linear_params"] * report["tokens_per_s"] / 312e12)
    assert report["projected_epoch_h"] == pytest.approx(report["seconds_per_step"] * 8 / 3600)

    table = (out / TABLE_NAME).read_text().splitlines()
    assert table[0].startswith("| Model |") and f"{report['trainable_params']:,}" in table[2]
    assert (out / PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = subprocess.run([sys.executable, "-m", "axolotl_nextai.report", str(out)],
                             capture_output=True, text=True, check=True).stdout
    assert "real tokens/s" in printed and "peak n/a allocated" in printed


def training_process(launcher: subprocess.Popen, timeout: float) -> psutil.Process:
    """The `python -m axolotl.cli.train` child of the accelerate launcher."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            if "axolotl.cli.train" in child.cmdline() and "accelerate.commands.launch" not in child.cmdline():
                return child
        time.sleep(0.1)
    raise AssertionError("no training process found")


def test_sigterm_checkpoints_and_resume_matches_an_uninterrupted_run(reference, tiny_model, tmp_path):
    _, _, uninterrupted = reference
    cfg = runtime_config(tiny_model, tmp_path)
    out = tmp_path / "out"
    launcher = start_train(cfg, tmp_path, tmp_path / "interrupted.log")
    trainer = training_process(launcher, timeout=120)
    deadline = time.monotonic() + 300
    while not (out / REPORT_NAME).exists():  # written at step EVERY: training is under way
        assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "interrupted.log").read_text()[-4000:]
        time.sleep(0.05)
    trainer.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=300) == 0, (tmp_path / "interrupted.log").read_text()[-4000:]
    interrupted = read_report(out)
    stop = interrupted["stop_step"]
    assert interrupted["stop_reason"] == "SIGTERM" and EVERY <= stop < STEPS
    checkpoint = out / f"checkpoint-{stop}"
    assert {"optimizer.pt", "scheduler.pt", "trainer_state.json", "adapter_model.safetensors"} <= {
        p.name for p in checkpoint.iterdir()}

    result = launch_train({**cfg, "resume_from_checkpoint": str(checkpoint)}, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    resumed = read_report(out)
    assert resumed["start_step"] == stop and resumed["global_step"] == STEPS and resumed["finished"]

    reference_loss, reference_lr = per_step(uninterrupted, "loss"), per_step(uninterrupted, "learning_rate")
    reference_tokens = per_step(uninterrupted, "real_tokens")
    joined_loss = {**per_step(interrupted, "loss"), **per_step(resumed, "loss")}
    assert sorted(joined_loss) == list(range(1, STEPS + 1))
    # Within CPU noise: two identical fresh tiny-model runs differ from their third step on and drift apart
    # (~0.005 by step 8, up to 0.02 by step 16 here), for a reason not found (see axolotl_nextai/README.md).
    assert joined_loss == pytest.approx(reference_loss, abs=0.05)
    assert resumed["final_loss"] == pytest.approx(uninterrupted["final_loss"], abs=0.05)
    # Same LR schedule and the same rows in the same order (tokens per step) after the resume.
    assert per_step(resumed, "learning_rate") == pytest.approx({s: reference_lr[s] for s in range(stop + 1, STEPS + 1)})
    assert per_step(resumed, "real_tokens") == {s: reference_tokens[s] for s in range(stop + 1, STEPS + 1)}


def test_time_budget_warns_then_checkpoints_and_stops_before_it_is_spent(tiny_model, tmp_path):
    budget_h, margin_min, max_steps = 1.5 / 60, 0.75, 100_000  # stop 45 s after launch; the run would take hours
    cfg = runtime_config(tiny_model, tmp_path, nextai_time_budget_hours=budget_h, max_steps=max_steps,
                         nextai_time_budget_margin_minutes=margin_min, nextai_report_every_steps=50)
    started = time.monotonic()
    result = launch_train(cfg, tmp_path)
    took = time.monotonic() - started
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    report = read_report(tmp_path / "out")
    assert report["stop_reason"] == "time_budget" and 2 < report["stop_step"] < max_steps
    assert "TIME BUDGET: at step 2/100000 the run is projected to take" in log
    assert (tmp_path / "out" / f"checkpoint-{report['stop_step']}" / "optimizer.pt").exists()
    assert took < budget_h * 3600 and report["process_time_s"] < budget_h * 3600


def test_regenerated_dataset_is_tokenized_again(tiny_model, tmp_path):
    data = tmp_path / "data" / "demo.jsonl"
    rows_seen = []
    for rows in (16, 32):
        write_sample(data, rows)
        cfg = tiny_cpu_config(tiny_model, tmp_path, max_steps=2, output_dir=str(tmp_path / f"out-{rows}"))
        result = launch_train(cfg, tmp_path)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        rows_seen.append(read_report(tmp_path / f"out-{rows}")["dataset_rows"])
    assert rows_seen == [16, 32]
    assert len(list((tmp_path / "prepared").glob("data-sha256-*"))) == 2
