"""The plugin runtime through the real `accelerate launch -m axolotl.cli.train` on the tiny CPU model, one
process.

Seven launches in all: the reference run (../conftest.py) checked for the report, the CUDA-only rule and the
memory cap; a run interrupted through its launcher and its resumption compared with the reference; a run sent
two quick SIGTERMs; a run that hits a tiny time budget; two runs around a regenerated dataset file.
"""

import signal
import subprocess
import sys
import time

import pytest
import torch
from axolotl_launch import launch_train, start_train, tiny_cpu_config
from datasets import load_from_disk
from runtime_runs import EVERY, STEPS, per_step, read_report, runtime_config, wait_for_training, write_sample
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from axolotl_nextai.run.report import PLOT_NAME, TABLE_NAME

pytestmark = pytest.mark.slow


def test_report_kernels_and_memory_cap(reference, tiny_model):
    work, log, report = reference
    out = work / "out"
    # CUDA-only rule: the unset kernel keys were turned off with one warning and training ran on the CPU.
    assert log.count("Axolotl's LoRA kernels are off") == 1
    assert "lora_qkv_kernel, lora_o_kernel, lora_mlp_kernel, lora_embedding_kernel set false" in log
    assert "nextai_gpu_memory_cap_gb: 40.0 GB asked, but there is no CUDA device" in log
    assert f"nextai report: step {EVERY}/{STEPS}" in log and "time budget: projected finish" in log

    assert report["final"] and report["stop_reason"] is None
    assert report["global_step"] == STEPS and report["steps"] == STEPS and report["loss_finite"]
    assert report["device"] == "cpu" and report["peak_memory_allocated_gib"] is None
    assert report["peak_memory_reserved_gib"] is None

    adapter = load_file(out / "adapter_model.safetensors")
    assert report["trainable_params"] == sum(t.numel() for t in adapter.values())
    # N from the 4-bit model equals the unquantized checkpoint's linear weights: packed NF4 counted in full.
    plain = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert report["linear_params"] == sum(
        m.weight.numel() for m in plain.modules() if isinstance(m, torch.nn.Linear)
    )

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
    printed = subprocess.run(
        [sys.executable, "-m", "axolotl_nextai.run.report", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "real tokens/s" in printed and "peak n/a allocated" in printed


def test_sigterm_to_the_launcher_checkpoints_and_resume_matches_an_uninterrupted_run(
    reference, tiny_model, tmp_path
):
    """SIGTERM to `accelerate launch` (which does not forward it) stops the trainer with a checkpoint;
    resumed, the run reproduces the uninterrupted one from step EVERY + 1 on.

    On CPU two fresh runs of the same config part at their third step (a reason not found; README, Caveats),
    while a run resumed from a checkpoint continues exactly like the run that saved it and went on. So the
    interrupted run starts from the reference's checkpoint-EVERY, and every later step must match exactly.
    """
    work, _, uninterrupted = reference
    cfg = runtime_config(
        tiny_model, tmp_path, resume_from_checkpoint=str(work / "out" / f"checkpoint-{EVERY}")
    )
    out, log = tmp_path / "out", tmp_path / "interrupted.log"
    launcher = start_train(cfg, tmp_path, log)
    (trainer,) = wait_for_training(launcher, out, log)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == -signal.SIGTERM  # the launcher ends at once ...
    trainer.wait(timeout=300)  # ... the trainer after a step and its saves
    interrupted = read_report(out)
    stop = interrupted["stop_step"]
    assert interrupted["final"], log.read_text()[-4000:]
    assert interrupted["stop_reason"] == "SIGUSR1" and interrupted["start_step"] == EVERY
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert 2 * EVERY <= stop < STEPS
    checkpoint = out / f"checkpoint-{stop}"
    assert {
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "trainer_state.json",
        "adapter_model.safetensors",
    } <= {p.name for p in checkpoint.iterdir()}

    result = launch_train({**cfg, "resume_from_checkpoint": str(checkpoint)}, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    resumed = read_report(out)
    assert resumed["start_step"] == stop and resumed["global_step"] == STEPS and resumed["final"]

    later = range(EVERY + 1, STEPS + 1)
    for key in ("loss", "learning_rate", "real_tokens", "trained_tokens"):
        joined = {**per_step(interrupted, key), **per_step(resumed, key)}
        expected = per_step(uninterrupted, key)
        assert joined == pytest.approx({step: expected[step] for step in later}, rel=1e-6), key


def test_two_quick_sigterms_never_leave_an_adapter_folder_without_weights(tiny_model, tmp_path):
    """The second SIGTERM, sent as the first one's checkpoint is announced, stops the run at once, though
    never inside a save: the checkpoint is complete, and `out` holds adapter_config.json only beside its
    weights."""
    cfg = runtime_config(tiny_model, tmp_path, max_steps=1000)
    out, log = tmp_path / "out", tmp_path / "twice.log"
    launcher = start_train(cfg, tmp_path, log)
    (trainer,) = wait_for_training(launcher, out, log)
    trainer.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 120
    while "SIGTERM received: saving checkpoint-" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.01)
    trainer.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=300) != 0
    checkpoints = list(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and {
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "trainer_state.json",
    } <= {p.name for p in checkpoints[0].iterdir()}
    assert (out / "adapter_config.json").exists() == (out / "adapter_model.safetensors").exists()


def test_time_budget_warns_then_checkpoints_and_stops_before_it_is_spent(tiny_model, tmp_path):
    # stop 45 s after launch; the run would take hours
    budget_h, margin_min, max_steps = 1.5 / 60, 0.75, 100_000
    cfg = runtime_config(
        tiny_model,
        tmp_path,
        nextai_time_budget_hours=budget_h,
        max_steps=max_steps,
        nextai_time_budget_margin_minutes=margin_min,
        nextai_report_every_steps=50,
    )
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
