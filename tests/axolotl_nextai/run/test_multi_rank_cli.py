"""Several ranks through the real launcher: `accelerate launch --multi_gpu --num_processes 2 -m
axolotl.cli.train` on a CPU (the plugin joins the 2 processes in a gloo group), the tiny NF4 model, the rows
of the one-process reference run (../conftest.py) at the same 4 rows a step: micro-batch 1 x accumulation 2 x
2 ranks.

Three launches: an FSDP2 run whose rank 1 alone gets SIGTERM (both ranks stop after one step and save one
checkpoint), its resumption to the end (together the reference's losses at every step: 2 ranks train what one
process trains, resuming is exact, and the levers marked `distributed` keep the values: nextai_saved_matmuls
in the first, nextai_dequant_chunk_mib in the second), and a DDP run whose rank 1 is SIGKILLed (rank 0 ends
with one line, at once).
"""

import signal
import time

import pytest
from axolotl_launch import launch_train, start_train
from runtime_runs import STEPS, per_step, read_report, runtime_config, wait_for_training

from axolotl_nextai.run.report import REPORT_NAME

pytestmark = pytest.mark.slow
RANKS = 2
# FSDP2 as the GPU recipes set it (recipes/matrix.yaml), in the CPU's training dtype, with the levers that
# train the same values under it (the others are refused with several ranks:
# axolotl_nextai/checks/multi_rank.py)
FSDP2 = {
    "fsdp_version": 2,
    "fsdp_config": {
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
        "reshard_after_forward": True,
        "state_dict_type": "SHARDED_STATE_DICT",
        "cpu_ram_efficient_loading": False,
    },
    "bnb_config_kwargs": {"bnb_4bit_quant_storage": "float32"},
    "optimizer": "adamw_torch",
    "nextai_saved_matmuls": ["o_proj"],
}


def two_rank_config(tiny_model, work, **overrides):
    return runtime_config(tiny_model, work, gradient_accumulation_steps=4 // RANKS, **overrides)


@pytest.fixture(scope="module")
def interrupted(tiny_model, tmp_path_factory):
    """FSDP2 on 2 ranks, SIGTERM to rank 1 only, once training is under way: (work, log, report)."""
    work = tmp_path_factory.mktemp("fsdp2")
    cfg = two_rank_config(tiny_model, work, **FSDP2)
    out, log = work / "out", work / "interrupted.log"
    launcher = start_train(cfg, work, log, ranks=RANKS)
    _, rank1 = wait_for_training(launcher, out, log, ranks=RANKS)
    rank1.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=300) == 0, log.read_text()[-4000:]
    return work, log.read_text(), read_report(out)


def test_sigterm_to_one_rank_stops_all_of_them_at_one_step_with_one_checkpoint(interrupted):
    work, log, report = interrupted
    stop = report["stop_step"]
    assert report["final"] and report["stop_reason"] == "SIGTERM" and report["stop_ranks"] == [1], log[-4000:]
    assert "rank 1: SIGTERM received" in log
    assert (
        f"SIGTERM received by rank 1 of 2 (all ranks stop at the same step): saving checkpoint-{stop}" in log
    )
    assert [p.name for p in (work / "out").glob("checkpoint-*")] == [f"checkpoint-{stop}"]
    assert report["global_step"] == stop < STEPS
    # one report, for the run: rank 0's, with both ranks' tokens (the reference's per step, checked below)
    assert report["world_size"] == RANKS and report["parallelism"] == "FSDP2"
    assert report["tokens_per_s_per_gpu"] == pytest.approx(report["tokens_per_s"] / RANKS)
    # each rank capped its own device (none here) and saw the same prepared data, prepared under one lock
    # rank 0 logs
    assert log.count("nextai_gpu_memory_cap_gb: 40.0 GB asked, but there is no CUDA device") == 1
    prepared = list((work / "prepared").glob("data-sha256-*/*/dataset_info.json"))
    assert len(prepared) == 1 and not list((work / "prepared").rglob("process_counter.txt"))


def test_two_ranks_resumed_train_the_losses_of_one_process(interrupted, reference, tiny_model):
    """The interrupted run's steps, then its resumption's, against the one-process reference, step by step:
    the same rows (real and trained tokens summed over the ranks) and the same losses (relative 1e-5: float
    sums in another order; LoRA dropout off, its masks are drawn per rank)."""
    work, _, first = interrupted
    checkpoint = work / "out" / f"checkpoint-{first['stop_step']}"
    # the resumption swaps one same-values lever for another (together they fail, on one process too)
    levers = {"nextai_saved_matmuls": None, "nextai_dequant_chunk_mib": 0.01}
    cfg = two_rank_config(tiny_model, work, resume_from_checkpoint=str(checkpoint), **{**FSDP2, **levers})
    result = launch_train(cfg, work, ranks=RANKS)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    resumed = read_report(work / "out")
    assert (
        resumed["start_step"] == first["stop_step"] and resumed["global_step"] == STEPS and resumed["final"]
    )
    one_process = reference[2]
    for key in ("loss", "learning_rate", "real_tokens", "trained_tokens"):
        joined = {**per_step(first, key), **per_step(resumed, key)}
        assert joined == pytest.approx(per_step(one_process, key), rel=1e-5), key


def test_a_killed_rank_ends_the_other_in_one_line(tiny_model, tmp_path):
    """SIGKILL to rank 1 of a DDP run: the launcher (torch's elastic agent) sends rank 0 SIGTERM at once, and
    rank 0 ends with one line naming how far it got, whichever comes first of its next collective failing
    (gloo: the socket closed) and the signal ending its step (its DataLoader workers end with it): not a
    traceback, not a hang."""
    cfg = two_rank_config(tiny_model, tmp_path, max_steps=1000)
    out, log = tmp_path / "out", tmp_path / "killed.log"
    launcher = start_train(cfg, tmp_path, log, ranks=RANKS)
    rank0, rank1 = wait_for_training(launcher, out, log, ranks=RANKS)
    rank1.kill()
    killed = time.monotonic()
    rank0.wait(timeout=60)
    took = time.monotonic() - killed
    assert launcher.wait(timeout=60) != 0
    text = log.read_text()
    assert took < 30, text[-4000:]
    lines = [line for line in text.splitlines() if "axolotl-nextai: rank 0 of 2 stops: " in line]
    assert len(lines) == 1, text[-4000:]
    assert "[rank0]: Traceback" not in text and (out / REPORT_NAME).exists()
