"""The run report from a hand-written history, without a Trainer."""

import json

import pytest
from click.testing import CliRunner

from axolotl_nextai.run.report import (
    PLOT_NAME,
    REPORT_NAME,
    TABLE9_COLUMNS,
    TABLE_NAME,
    main,
    summarize,
    table9_markdown,
    write_run_report,
)

RUN = {
    "output_dir": "out",
    "model": "llama2-70b",
    "lora_r": 4,
    "lora_target_modules": ["o_proj", "down_proj"],
    "device": "cpu",
    "trainable_params": 17_039_360,
    "total_params": 68_976_648_192,
    "linear_params": 68_710_000_000,
    "peak_tflops": 312.0,
    "steps_per_epoch": 1000,
    "max_steps": 2000,
    "start_step": 0,
    "global_step": 3,
    "seconds_per_step": 4.0,
    "wall_time_s": 14.0,
    "process_time_s": 200.0,
    "final": True,
    "stop_reason": None,
    "stop_step": None,
    "dataset_rows": 4000,
}


def history(memory=None):
    # Step 1 pays one-off costs (6 s for 1,000 tokens); then 4 s and 2,000 real tokens per step.
    rows = [(1, 6.0, 1000, 300, 2.0), (2, 10.0, 3000, 900, 1.5), (3, 14.0, 5000, 1500, 1.2)]
    return [
        {
            "step": s,
            "elapsed_s": t,
            "real_tokens": real,
            "trained_tokens": trained,
            "loss": loss,
            "learning_rate": 1e-4,
            "memory_allocated_gib": memory and memory + s,
            "memory_reserved_gib": memory and memory + s + 0.5,
        }
        for s, t, real, trained, loss in rows
    ]


def test_steady_state_throughput_mfu_and_projections():
    report = summarize(history(), RUN)
    assert report["tokens_per_s"] == 500.0  # (5000 - 1000) / (14 - 6): the first step left out
    assert report["mfu"] == pytest.approx(6 * 68_710_000_000 * 500 / 312e12)
    assert report["projected_epoch_h"] == pytest.approx(4000 / 3600)
    assert report["projected_run_h"] == pytest.approx(8000 / 3600)
    assert report["trainable_pct"] == pytest.approx(0.0247, abs=1e-4)  # the paper's Table 9 figure
    assert (report["first_loss"], report["final_loss"], report["steps"]) == (2.0, 1.2, 3)
    assert [row["tokens_per_s"] for row in report["history"]] == [1000 / 6, 500.0, 500.0]
    assert (report["real_tokens"], report["trained_tokens"]) == (5000, 1500)


def test_memory_is_null_without_cuda_and_the_peak_with_it():
    assert summarize(history(), RUN)["peak_memory_allocated_gib"] is None
    report = summarize(history(memory=30.0), RUN)
    assert (report["peak_memory_allocated_gib"], report["peak_memory_reserved_gib"]) == (33.0, 33.5)


def test_table9_row_has_a_cell_per_column():
    lines = table9_markdown(summarize(history(), RUN)).splitlines()
    assert len(lines) == 3
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert len(cells) == len(TABLE9_COLUMNS)
    assert "17,039,360" in cells and "0.0247" in cells and cells.count("n/a") == 2


def test_files_written_and_printed(tmp_path, capsys):
    report = summarize(history(memory=30.0), {**RUN, "output_dir": str(tmp_path)})
    assert write_run_report(report, tmp_path, final=False) is None
    assert not (tmp_path / TABLE_NAME).exists()
    assert write_run_report(report, tmp_path, final=True) is None
    assert json.loads((tmp_path / REPORT_NAME).read_text())["tokens_per_s"] == 500.0
    assert (tmp_path / PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = CliRunner().invoke(main, [str(tmp_path)], catch_exceptions=False).output
    assert "500.0 real tokens/s" in out and "peak 33.00 GiB allocated" in out
    assert "1.2000 over 3 logged steps" in out and "mean of the first and last 1: 2.0000 -> 1.2000" in out


def test_loss_means_compare_windows_not_single_steps():
    losses = [
        {"step": s, "elapsed_s": float(s), "real_tokens": s, "trained_tokens": s, "loss": loss}
        for s, loss in enumerate([2.0, 3.0, 2.0, 3.0, 1.0, 2.5, 1.0, 2.5], start=1)
    ]
    report = summarize(losses, RUN)
    assert (report["first_loss"], report["final_loss"]) == (2.0, 2.5)  # reads as worse
    assert (report["start_loss_mean"], report["end_loss_mean"], report["loss_window"]) == (2.5, 1.75, 2)
