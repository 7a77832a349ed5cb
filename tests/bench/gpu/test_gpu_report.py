"""bench/gpu/report70b.py: the cost fit, its projection onto a v5 epoch, the same-rows check and lanes sharing
a card, on hand-made call folders (the GPU runs themselves cannot run here); the memory probe's process
filter."""

import importlib.util
import json
import os
import sys

import pytest
import yaml
from axolotl_launch import ROOT

sys.path.insert(0, str(ROOT / "bench" / "gpu"))
spec = importlib.util.spec_from_file_location("report70b", ROOT / "bench" / "gpu" / "report70b.py")
report70b = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report70b)

V5 = {
    **yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5.yml").read_text()),
    "nextai_fuse_accumulation": False,
}


def history(steps, passes_per_step, tokens_per_step, a=0.8, b=0.0005, losses=None):
    """Cumulative per-step rows whose step times follow a x passes + b x tokens exactly."""
    rows, t, passes, tokens = [], 0.0, 0, 0
    for i in range(steps):
        p, n = passes_per_step[i % len(passes_per_step)], tokens_per_step[i % len(tokens_per_step)]
        t, passes, tokens = t + a * p + b * n, passes + p, tokens + n
        rows.append(
            {
                "step": i + 1,
                "elapsed_s": t,
                "real_tokens": tokens - 10 * (i + 1),
                "trained_tokens": tokens // 2,
                "computed_tokens": tokens,
                "forward_passes": passes,
                "loss": None if losses is None else losses[i],
            }
        )
    return rows


def test_the_fit_recovers_the_cost_per_pass_and_per_token():
    rows = history(8, [4, 1, 2, 4, 3], [1600, 400, 1300, 2000, 700])
    assert report70b.fit_step_cost(rows, micro_steps=4) == pytest.approx((0.8, 0.0005))


def test_a_fused_epoch_is_faster_for_a_fixed_cost_and_slower_for_padding_alone():
    fused = {**V5, "nextai_fuse_accumulation": True}
    for a, b in [(1.0, 0.0), (0.8, 0.0003)]:
        assert report70b.projected_epoch(a, b, fused) > 1.3 * report70b.projected_epoch(a, b, V5)
    # per token alone fusing only adds padding
    assert report70b.projected_epoch(0.0, 0.001, fused) < report70b.projected_epoch(0.0, 0.001, V5)
    # one pass a row: a fixed cost alone gives the mean row's length (v5's is ~362 tokens) per second
    assert report70b.projected_epoch(1.0, 0.0, V5) == pytest.approx(362, abs=5)


def write_run(folder, name, cfg, rows):
    (folder / f"{name}.cfg.yml").write_text(yaml.safe_dump(cfg))
    (folder / f"{name}.rc").write_text("rc=0 wall_seconds=100\n")
    (folder / f"{name}.log").write_text('"attn_implementation": "sdpa"\n')
    report = {
        "history": rows,
        "trainable_params": 17_039_360,
        "peak_memory_allocated_gib": 36.2,
        "peak_memory_reserved_gib": 36.6,
        "tokens_per_s": (rows[-1]["real_tokens"] - rows[0]["real_tokens"])
        / (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]),
        "mfu": 0.2,
        "final_loss": rows[-1]["loss"],
    }
    (folder / f"{name}.report.json").write_text(json.dumps(report))


def test_the_report_compares_same_rows_and_says_what_was_skipped(tmp_path):
    losses = [2.0 - 0.01 * i for i in range(13)]
    faithful = history(13, [4], [1500, 700, 2100], a=1.0, losses=losses)
    fused = history(13, [1, 2, 4], [1500, 700, 2100], a=1.0, losses=[x + 0.002 for x in losses])
    write_run(tmp_path, "faithful-grouped", V5, faithful)
    write_run(tmp_path, "faithful-grouped-fused", {**V5, "nextai_fuse_accumulation": True}, fused)
    (tmp_path / "unsloth-grouped.rc").write_text("rc=skipped wall_seconds=0\n")
    text = "\n".join(
        report70b.render_call(
            tmp_path,
            ["faithful-grouped", "faithful-grouped-fused", "unsloth-grouped"],
            "the command",
            362.0,
            "Results",
        )
    )
    assert "| faithful-grouped-fused | faithful-grouped | 13 | yes | 0.0020 |" in text
    assert "failed: skipped: too little of the call's CALL_LIMIT was left to start it" in text
    assert "projected real tok/s over a v5 epoch" in text


def test_different_tokens_at_a_step_are_flagged():
    a = history(4, [4], [1000])
    b = [dict(row) for row in a]
    b[2]["trained_tokens"] += 1
    assert report70b.same_rows(b, a)[:2] == (4, False)


def test_runs_side_by_side_on_a_card_are_marked_and_their_memory_is_their_own(tmp_path):
    """Lanes: a and b overlapped on card 0, c ran on card 1 at the same time, d on card 0 after them."""
    a, b, c, d = "faithful-grouped", "faithful-grouped-fused", "stock-grouped", "unsloth-grouped"
    rows = history(5, [4], [1500])
    for name, rc in [
        (a, "gpu=0 start=100 end=200"),
        (b, "gpu=0 start=150 end=260"),
        (c, "gpu=1 start=100 end=300"),
        (d, "gpu=0 start=260 end=300"),
    ]:
        write_run(tmp_path, name, V5, rows)
        (tmp_path / f"{name}.rc").write_text(f"rc=0 wall_seconds=100 {rc}\n")
    # card total, this run's process
    (tmp_path / f"{a}.smi.txt").write_text("600 -\n70000 35000\n71000 36100\n")
    (tmp_path / f"{b}.smi.txt").write_text("71000 -\n")  # nvidia-smi listed none of b's processes
    assert report70b.card_neighbours(tmp_path) == {a: [b], b: [a], c: [], d: []}
    text = "\n".join(report70b.render_call(tmp_path, [a, b, c, d], "cmd", 362.0, "Results"))
    table = {
        line.split(" | ")[0][2:]: line
        for line in text.splitlines()
        if line.startswith("| ") and " | rc=0" in line
    }
    assert "| rc=0 wall_seconds=100 gpu=0 |" in table[a] and "start=" not in text
    assert "| 36100 |" in table[a] and "| 71000 (card total) |" in table[b]
    assert table[a].count(" †") == 2 and " †" not in table[c] + table[d]
    assert f"{a} (with {b}); {b} (with {a})." in text


def test_the_memory_probe_counts_only_the_run_s_own_processes():
    probe_spec = importlib.util.spec_from_file_location(
        "probe", ROOT / "bench" / "gpu" / "gpu_memory_probe.py"
    )
    probe = importlib.util.module_from_spec(probe_spec)
    probe_spec.loader.exec_module(probe)
    me = os.getpid()
    mine = probe.command_line(me).split()[0]  # this process's program, surely in its own command line
    apps = f"{me}, 35000\n{me}, 1000\n999999999, 40000\n[N/A], [N/A]\n"
    assert probe.run_mib(apps, mine) == 36000  # a process of another run (or gone) is not counted
    assert probe.run_mib(apps, "/tmp/cfg-no-such-run.yml") is None
    assert probe.run_mib("", mine) is None


def test_the_tables_take_a_run_from_the_later_call_that_ran_what_an_earlier_one_skipped(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "t5-attn.rc").write_text("rc=skipped wall_seconds=0 gpu=0\n")
    write_run(first, "t5-o-down", V5, history(5, [4], [1500]))
    write_run(
        second,
        "t5-attn",
        {**V5, "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        history(5, [4], [1500]),
    )
    (second / "t5-o-down.rc").write_text("rc=skipped wall_seconds=0 gpu=0\n")
    text = "\n".join(
        report70b.render_tables(
            [(first, ["t5-o-down", "t5-attn"]), (second, ["t5-attn", "t5-o-down"])], 362.0
        )
    )
    table = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    assert "**fits** (call 2)" in table["all attention"]
    assert "**fits** (call 1)" in table["attention + FFN output (the submission)"]
    assert "skipped" not in text
