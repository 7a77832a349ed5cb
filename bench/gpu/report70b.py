"""Turn `bench/gpu/gpu70b.sh` calls' results into one `bench/results/gpu70b-*.md`, a section per call.

    python bench/gpu/report70b.py --call FETCHED_DIR --runs RUN ... --command "the device command" \
        [--call ... --runs ... --command ...] --out FILE.md

Each FETCHED_DIR holds `gpu70b.tgz` (or its unpacked files): `env.txt`, and per run `<name>.report.json` (the
plugin's run report), `<name>.cfg.yml` (the config trained), `<name>.smi.txt` (nvidia-smi every 0.5 s: the
card's memory.used and this run's processes', see gpu_memory_probe.py), `<name>.log`, `<name>.rc` (exit
status, wall seconds, GPU, start and end). A RUN is a recipe path or an ablation of bench/gpu/ablations.yaml,
whose prediction is shown next to the measurement. The first run of a call is the baseline of its ratio
column. Without packing, a short run sees a biased set of row lengths (Axolotl's group_by_length serves each
group of 200 rows longest first, and a small sample's groups mix lengths more than an epoch's), so for such a
run the report also fits seconds per optimizer step = a x forward passes + b x tokens computed (padding
included) and projects that cost onto every step of a whole v5 epoch as the run would form them
(`projected_epoch`). A run with `same_rows_as` in bench/gpu/ablations.yaml is compared step by step with that
run: the same real and trained tokens at every step mean the same rows in the same order.

Lanes sharing a card (`GPUS=0,0,0`): memory is each run's own (PyTorch's peaks from its report, nvidia-smi's
per-process figure where nvidia-smi lists the run's processes), and the speed of a run that trained while
another run was on the same card is marked (†): the card's compute was shared, so it is slower than alone.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tarfile
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_config import ablation, load_run, run_name, run_specs
from v5_shaped import V5_LENGTHS, epoch_steps, sample_lengths, v5_rows

from axolotl_nextai.levers.fused_accumulation import split_rows
from axolotl_nextai.models.architectures import ARCHITECTURES, architecture_of
from axolotl_nextai.models.footprint import optimizer_state_bytes
from axolotl_nextai.run.report import fmt

TRAINABLE_PAPER = 17_039_360
GIB_40GB = 40e9 / 2**30
PAD_MULTIPLE = 64  # Axolotl's collator pads each batch to a multiple of 64 tokens


def v5_mean_row() -> float:
    """Mean real tokens of a v5 row under the v5 length model (a large seeded sample)."""
    return statistics.fmean(n for _, n in sample_lengths(20000, seed=1))


def fit_step_cost(history: list[dict], micro_steps: int) -> tuple[float, float]:
    """(a, b): seconds per forward pass and per token computed, least squares over the steps after the first.

    Passes and computed tokens (padding included) come from the history where the run report counted them;
    an older report gives `micro_steps` passes a step and its real tokens."""

    def per_step(key: str) -> np.ndarray | None:
        values = [row.get(key) for row in history]
        return None if None in values else np.diff(values).astype(float)

    passes = per_step("forward_passes")
    tokens = per_step("computed_tokens")
    if tokens is None:
        tokens = per_step("real_tokens")
    if passes is None:
        passes = np.full(len(tokens), float(micro_steps))
    seconds = np.diff([row["elapsed_s"] for row in history])
    (a, b), *_ = np.linalg.lstsq(np.column_stack([passes, tokens]), seconds, rcond=None)
    return float(a), float(b)


def padded(tokens: int) -> int:
    return PAD_MULTIPLE * math.ceil(tokens / PAD_MULTIPLE)


@cache
def epoch_step_lengths(batch: int) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(tokens for _, tokens in step) for step in epoch_steps(batch=batch))


def projected_epoch(a: float, b: float, cfg: dict) -> float:
    """Real tokens/s over a whole v5 epoch's steps (`v5_shaped.epoch_steps`) at a s a pass and b s a computed
    token, passes formed as the run forms them: one per micro-batch of `micro_batch_size` rows padded to its
    longest, or with `nextai_fuse_accumulation` the step's rows padded together and cut by `split_rows`."""
    micro, accumulation = cfg["micro_batch_size"], cfg["gradient_accumulation_steps"]
    seconds = real = 0.0
    for step in epoch_step_lengths(micro * accumulation):
        real += sum(step)
        if cfg.get("nextai_fuse_accumulation"):
            width = padded(max(step))
            budget = cfg.get("nextai_fuse_accumulation_max_tokens") or cfg["sequence_len"]
            passes = [(r.stop - r.start) * width for r in split_rows(len(step), width, budget)]
        else:
            passes = [
                len(step[i : i + micro]) * padded(max(step[i : i + micro]))
                for i in range(0, len(step), micro)
            ]
        seconds += a * len(passes) + b * sum(passes)
    return real / seconds


def same_rows(history: list[dict], other: list[dict]) -> tuple[int, bool, float | None]:
    """(steps compared, the same real and trained tokens at each of them, max |loss difference|)."""
    mine = {row["step"]: row for row in history}
    common = [row for row in other if row["step"] in mine]
    same = all(
        mine[row["step"]][key] == row[key] for row in common for key in ("real_tokens", "trained_tokens")
    )
    gaps = [
        abs(mine[row["step"]]["loss"] - row["loss"])
        for row in common
        if row.get("loss") is not None and mine[row["step"]].get("loss") is not None
    ]
    return len(common), same, max(gaps) if gaps else None


def unpack(folder: Path) -> Path:
    """The archive's files in a temporary folder (the fetched folder is read-only), or `folder` itself."""
    archive = folder / "gpu70b.tgz"
    if archive.exists():
        target = Path(tempfile.mkdtemp(prefix="gpu70b-"))
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target
    return folder


def attention_used(log: str) -> str:
    found = re.findall(r'"attn_implementation": "([a-z_0-9]+)"', log)
    return found[-1] if found else "unknown"


def smi_peak_mib(path: Path) -> tuple[int | None, str]:
    """nvidia-smi's peak for a run and what it covers: `process` (the run's own processes, the second column
    of gpu_memory_probe.py's lines) where nvidia-smi listed them, else `card` (the whole card's
    memory.used)."""
    lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    own = [int(cols[1]) for cols in lines if len(cols) > 1 and cols[1].isdigit()]
    if own:
        return max(own), "process"
    card = [int(cols[0]) for cols in lines if cols and cols[0].isdigit()]
    return (max(card) if card else None), "card"


def rc_fields(rc: str) -> dict[str, str]:
    """`rc=0 wall_seconds=95 gpu=0 start=... end=...` as a dict."""
    return dict(item.split("=", 1) for item in rc.split() if "=" in item)


@cache  # read once per call folder, not once per run
def card_neighbours(folder: Path) -> dict[str, list[str]]:
    """For each run of the call, the other runs that were on the same card (or CPU) while it ran: lanes
    sharing it."""
    spans = {}
    for path in folder.glob("*.rc"):
        fields = rc_fields(path.read_text())
        if {"gpu", "start", "end"} <= fields.keys():
            spans[path.stem] = (fields["gpu"], int(fields["start"]), int(fields["end"]))
    return {
        name: sorted(
            other
            for other, (card, begin, end) in spans.items()
            if other != name and card == mine and begin < stop and start < end
        )
        for name, (mine, start, stop) in spans.items()
    }


def shown_rc(rc: str) -> str:
    """The exit column: the rc line without its start and end times."""
    return " ".join(item for item in rc.split() if not item.startswith(("start=", "end=")))


def failure(rc: str, log: str) -> str:
    """Why a run left no report: its time limit, the call's end, or the trainer's last error line."""
    if rc.startswith("rc=124"):
        return "stopped at its time limit (RUN_TIMEOUT, or what CALL_LIMIT left) before its first step ended"
    if rc == "rc=missing":
        return "not finished: the device call reached its time limit during this run"
    if rc.startswith("rc=skipped"):
        return "skipped: too little of the call's CALL_LIMIT was left to start it"
    # a traceback's last line, or the plugin's one-line config error
    errors = [
        line
        for line in log.splitlines()
        if re.match(r"^([\w.]*(Error|Exception)\b|config error: )", line) and "CalledProcessError" not in line
    ]  # not the launcher's
    return errors[-1][:300] if errors else "no report and no error line in its log"


def mean_train_loss(log: str) -> str | None:
    """The trainer's closing `train_loss` (mean over the run) from a run's log, marked as a mean."""
    found = re.findall(r"'train_loss': '?([0-9.]+)", log)
    return f"{found[-1]} (mean)" if found else None  # as the trainer printed it (4 significant digits)


def run_config_used(folder: Path, run: str) -> dict:
    """The config the run trained: archived by gpu70b.sh, else rebuilt from the run's name."""
    archived = folder / f"{run_name(run)}.cfg.yml"
    return yaml.safe_load(archived.read_text()) if archived.exists() else load_run(run)


def run_row(folder: Path, run: str, mean_row: float) -> dict:
    name = run_name(run)
    cfg = run_config_used(folder, run)
    rc = (folder / f"{name}.rc").read_text().strip() if (folder / f"{name}.rc").exists() else "rc=missing"
    log = (folder / f"{name}.log").read_text(errors="replace") if (folder / f"{name}.log").exists() else ""
    # one probe file per card the run used (`<name>.smi.<card>.txt`; older calls: `<name>.smi.txt`): the
    # highest
    peaks = [smi_peak_mib(path) for path in sorted(folder.glob(f"{name}.smi*.txt"))]
    smi_peak, smi_scope = max(peaks, key=lambda peak: peak[0] or 0) if peaks else (None, "card")
    shared = card_neighbours(folder).get(name, [])
    row = {
        "recipe": name,
        "rc": rc,
        "attention": attention_used(log),
        "smi_peak_mib": smi_peak,
        "smi_shown": fmt(smi_peak, "d")
        + (" (card total)" if shared and smi_peak and smi_scope == "card" else ""),
        "shared_with": shared,
        "mark": " †" if shared else "",
        "prediction": ablation(run).get("prediction", ""),
    }
    report_path = folder / f"{name}.report.json"
    if not report_path.exists():
        row["error"] = failure(rc, log)
        return row
    report = json.loads(report_path.read_text())
    history = report["history"]
    row["history"] = history
    tokens_v5 = v5_rows() * mean_row
    steady = history[1:] if len(history) > 1 else history
    seconds = steady[-1]["elapsed_s"] - (history[0]["elapsed_s"] if len(history) > 1 else 0.0)
    tokens_per_s = report["tokens_per_s"]
    row.update(
        steps=len(history),
        trainable=report["trainable_params"],
        peak_alloc=report["peak_memory_allocated_gib"],
        peak_reserved=report["peak_memory_reserved_gib"],
        tokens_per_s=tokens_per_s,
        s_per_step=seconds / len(steady) if steady else None,
        tokens_per_step=(steady[-1]["real_tokens"] - (history[0]["real_tokens"] if len(history) > 1 else 0))
        / len(steady),
        mfu=report["mfu"],  # the plugin's 6N over nextai_peak_tflops, which gpu70b.sh sets to 790 (per GPU)
        gpus=report.get("world_size", 1),
        tokens_per_s_per_gpu=report.get("tokens_per_s_per_gpu", tokens_per_s),
        v5_hours=tokens_v5 / tokens_per_s / 3600 if tokens_per_s else None,
        # the last logged step's loss; a recipe logging less often than every step leaves only the trainer's
        # mean over the run (`train_loss`), said as such
        final_loss=report["final_loss"] if report["final_loss"] is not None else mean_train_loss(log),
    )
    if not shared and not cfg.get("sample_packing") and len(history) > 3:  # a shared card's times fit nothing
        a, b = fit_step_cost(history, cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"])
        epoch = projected_epoch(a, b, cfg)
        row.update(fit=(a, b), tokens_per_s_v5=epoch, v5_hours_fit=tokens_v5 / epoch / 3600)
    return row


def several_gpus(rows: list[dict]) -> list[str]:
    """With a run of several ranks in the call: each run's GPUs, tokens/s over all of them and per GPU, and
    per GPU against the call's first run (with a 1-GPU first run: the scaling efficiency). Memory: the highest
    rank's."""
    measured = [r for r in rows if r.get("tokens_per_s")]
    if not any(r["gpus"] > 1 for r in measured):
        return []
    first = measured[0]["tokens_per_s_per_gpu"]
    header = (
        "| run | GPUs | real tok/s | real tok/s per GPU | per GPU vs the first run | peak allocated GiB "
        "| nvidia-smi peak MiB |"
    )
    lines = [
        "",
        "Several GPUs (tokens summed over the ranks; memory and nvidia-smi: the highest rank's or card's):",
        "",
        header,
        "|---|---|---|---|---|---|---|",
    ]
    for r in measured:
        lines.append(
            f"| {r['recipe']} | {r['gpus']} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s_per_gpu']:,.0f} "
            f"| {r['tokens_per_s_per_gpu'] / first:.0%} | {fmt(r['peak_alloc'], '.2f')} | {r['smi_shown']} |"
        )
    return lines


def shared_note(rows: list[dict]) -> list[str]:
    """The footnote to † : which runs shared a card with which."""
    shared = [f"{r['recipe']} (with {', '.join(r['shared_with'])})" for r in rows if r.get("shared_with")]
    if not shared:
        return []
    return [
        "",
        (
            "† Measured while other runs trained on the same card (lanes sharing a GPU): its compute was "
            "shared, so these times are longer than alone, and not comparable with each other. Memory is "
            "the run's own (nvidia-smi's card total where marked). " + "; ".join(shared) + "."
        ),
    ]


def render_call(folder: Path, runs: list[str], command: str, mean_row: float, heading: str) -> list[str]:
    """One call's section; a numbered call's heading gets the call's start time from env.txt."""
    env = (folder / "env.txt").read_text() if (folder / "env.txt").exists() else ""
    started = re.search(r"^date: (\S+)", env, re.MULTILINE)
    if started and heading != "Results":
        heading += f" ({started.group(1)})"
    rows = [run_row(folder, run, mean_row) for run in runs]
    base = rows[0].get("tokens_per_s")
    lines = [
        f"## {heading}",
        "",
        "```",
        env.strip(),
        "```",
        "",
        "```",
        command,
        "```",
        "",
        (
            "| run | exit | attention | steps | trainable | peak allocated GiB | peak reserved GiB | "
            "nvidia-smi peak MiB | real tok/s | vs first | s / optimizer step | real tokens / step | MFU "
            "(6N, 790 TFLOP/s) | MFU (4N) | v5 epoch (h) | predicted before the run |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['recipe']} | {shown_rc(r['rc'])} | {r['attention']} | failed: {r['error']} |"
                + " |" * 11
                + f" {r['prediction']} |"
            )
            continue
        ratio = r["tokens_per_s"] / base if base and r["tokens_per_s"] else None
        lines.append(
            f"| {r['recipe']} | {shown_rc(r['rc'])} | {r['attention']} | {r['steps']} | {r['trainable']:,} | "
            f"{fmt(r['peak_alloc'], '.2f')} | {fmt(r['peak_reserved'], '.2f')} | {r['smi_shown']} | "
            f"{fmt(r['tokens_per_s'], ',.0f')}{r['mark']} | {fmt(ratio, '.2f')}x | "
            f"{fmt(r['s_per_step'], '.2f')}{r['mark']} | {fmt(r['tokens_per_step'], ',.0f')} | "
            f"{fmt(None if r['mfu'] is None else 100 * r['mfu'], '.1f')} % | "
            f"{fmt(None if r['mfu'] is None else 100 * r['mfu'] * 4 / 6, '.1f')} % | "
            f"{fmt(r['v5_hours'], '.1f')} | {r['prediction']} |"
        )
    lines += shared_note(rows) + several_gpus(rows)
    fitted = [r for r in rows if "fit" in r]
    if fitted:
        lines += [
            "",
            (
                "Fitted step cost, projected onto a whole v5 epoch's steps (no packing: a short run's rows "
                "are not an epoch's, see above):"
            ),
            "",
            (
                "| run | s per forward pass | ms per computed token | projected real tok/s over a v5 epoch "
                "| v5 epoch (h) | vs the first fitted run | fastest run vs this |"
            ),
            "|---|---|---|---|---|---|---|",
        ]
        best = max(x.get("tokens_per_s") or 0 for x in rows)
        first = fitted[0]["tokens_per_s_v5"]
        for r in fitted:
            lines.append(
                f"| {r['recipe']} | {r['fit'][0]:.3f} | {1e3 * r['fit'][1]:.3f} | "
                f"{r['tokens_per_s_v5']:,.0f} | {r['v5_hours_fit']:.1f} | "
                f"{r['tokens_per_s_v5'] / first:.2f}x | {best / r['tokens_per_s_v5']:.2f}x |"
            )
    by_name = {r["recipe"]: r for r in rows}
    pairs = [(r, by_name.get(ablation(run).get("same_rows_as"))) for r, run in zip(rows, runs, strict=True)]
    pairs = [(r, other) for r, other in pairs if other is not None and "history" in r and "history" in other]
    if pairs:
        lines += [
            "",
            "Same rows (`same_rows_as`): real and trained tokens compared step by step:",
            "",
            "| run | against | steps compared | same tokens every step | max abs loss difference | "
            "real tok/s ratio |",
            "|---|---|---|---|---|---|",
        ]
        for r, other in pairs:
            steps, same, gap = same_rows(r["history"], other["history"])
            ratio = r["tokens_per_s"] / other["tokens_per_s"] if other.get("tokens_per_s") else None
            lines.append(
                f"| {r['recipe']} | {other['recipe']} | {steps} | {'yes' if same else 'NO'} "
                f"| {fmt(gap, '.4f')} | {fmt(ratio, '.2f')}x |"
            )
    for run in runs:  # bench/gpu/step_profile.py's summary, for a run that had it
        profile = folder / f"{run_name(run)}.profile.md"
        if profile.exists():
            lines += [
                "",
                f"### {run_name(run)}: its settings, and where one step's time went",
                "",
                re.sub(r"^## ", "#### ", profile.read_text().strip(), flags=re.MULTILINE),
            ]
    return lines + [""]


TABLES = {
    "Table 4": "LoRA rank at cutoff 4,096, paged AdamW 32-bit (micro-batch 1 x accumulation 4, "
    "attention + FFN output)",
    "Table 5": "LoRA target modules at the submission's settings (r 4, cutoff 1,024, paged AdamW 8-bit)",
    "Table 6": "FlashAttention-2 (SDPA on this machine) vs eager attention, at Table 4's r 8",
}
LEVERS = [  # (key, how it shows in the levers column)
    ("activation_offloading", "layer inputs on the CPU"),
    ("liger_glu_activation", "Liger"),
    ("nextai_dequant_chunk_mib", "dequant in {} MiB chunks"),
    ("nextai_tiled_mlp_shards", "MLP in {} shards"),
    ("nextai_embeddings_on_cpu", "embeddings on the CPU"),
    ("nextai_expandable_segments", "expandable segments"),
]


def levers_used(cfg: dict) -> str:
    used = [label.format(cfg[key]) for key, label in LEVERS if cfg.get(key)]
    return ", ".join(used) or "none"


def status(row: dict, cap_gib: float) -> str:
    """Fits (its peak reserved under the cap), out of memory, refused before loading, or the failure."""
    if "error" not in row:
        return (
            "**fits**" if row["peak_reserved"] is None or row["peak_reserved"] <= cap_gib else "over the cap"
        )
    if "OutOfMemoryError" in row["error"]:
        asked = re.search(r"Tried to allocate ([\d.]+ [GM]iB)", row["error"])
        return "out of memory" + (f" (a {asked.group(1)} request)" if asked else "")
    needed = re.search(
        r"(?:ConfigError|config error): .*?(attn_implementation: eager).*?(at least [\d.]+ GiB)", row["error"]
    )
    if needed:
        return f"refused before loading: {needed.group(1)} needs {needed.group(2)}"
    return f"failed: {row['error']}"


def paged_state_gib(cfg: dict) -> float:
    """Paged AdamW's state in CUDA managed memory: outside PyTorch's counters and the cap, in nvidia-smi's."""
    arch = architecture_of(str(cfg.get("base_model"))) or ARCHITECTURES["meta-llama/Llama-2-70b-hf"]
    return optimizer_state_bytes(arch, cfg["lora_r"], cfg["lora_target_modules"], cfg["optimizer"])[1] / 2**30


def loss_cell(loss: float | str | None) -> str:
    return loss if isinstance(loss, str) else fmt(loss, ".3f")


def measured_rows(calls: list[tuple[Path, list[str]]], mean_row: float) -> dict[str, tuple[int, Path, dict]]:
    """Each paper run's row from the last call that started it: a later call re-runs what an earlier one
    skipped."""
    rows = {}
    for number, (folder, runs) in enumerate(calls, 1):
        for run in runs:
            if ablation(run).get("paper"):
                row = run_row(folder, run, mean_row)
                if run not in rows or not row["rc"].startswith("rc=skipped"):
                    rows[run] = (number, folder, row)
    return rows


def paper_cells(paper: dict) -> str:
    """The paper's columns for a row: its peak GPU memory (GB) and its train loss or training time, as
    printed."""
    other = " / ".join(str(paper[key]) for key in ("loss", "time") if paper.get(key) is not None) or "n/a"
    return f"{fmt(paper.get('gb'), '.2f')} | {other}"


def reserved_cell(row: dict, paper_gb: float | None) -> str:
    """Peak reserved in GiB, then in the paper's unit (GB) and as a share of the paper's peak."""
    reserved = row.get("peak_reserved")
    if reserved is None:
        return "n/a | n/a"
    gb = reserved * 2**30 / 1e9
    share = f" ({gb / paper_gb:.2f}x the paper's)" if paper_gb else ""
    return f"{reserved:.2f} | {gb:.2f}{share}"


def render_tables(calls: list[tuple[Path, list[str]]], mean_row: float) -> list[str]:
    """The paper's Tables 4-6 from the runs that carry a `paper:` entry, measured beside the paper's
    numbers."""
    lines = [
        "## Tables 4-6 under the 40 GB cap",
        "",
        (
            f"A run fits when its peak reserved memory stays under the cap ({GIB_40GB:.2f} GiB = 40 GB; "
            "PyTorch's allocator refuses anything beyond). The paper's columns are its own numbers as it "
            "printed them: peak GPU memory (GB) without these levers, and its train loss (Table 4) or "
            "training time (Tables 5, 6; the paper does not say for how many steps). Our peak reserved is "
            "given in GB too, beside the paper's."
        ),
        "",
    ]
    rows = measured_rows(calls, mean_row)
    for table, about in TABLES.items():
        members = [run for run in rows if table in ablation(run)["paper"]]
        if not members:
            continue
        lines += [
            f"### {table}: {about}",
            "",
            (
                "| row | paper: peak GB | paper: loss / time | status under the cap | peak allocated GiB "
                "| peak reserved GiB | peak reserved GB | nvidia-smi peak MiB "
                "| paged optimizer state GiB (outside the cap) | s / optimizer step | real tok/s | loss "
                "| memory levers | predicted before the run |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in members:
            number, folder, row = rows[run]
            paper = ablation(run)["paper"][table]
            cfg = run_config_used(folder, run)
            measured_in = f" (call {number})" if len(calls) > 1 else ""
            lines.append(
                f"| {paper['row']} | {paper_cells(paper)} | {status(row, GIB_40GB)}{measured_in} | "
                f"{fmt(row.get('peak_alloc'), '.2f')} | {reserved_cell(row, paper.get('gb'))} | "
                f"{row['smi_shown']} | {paged_state_gib(cfg):.2f} | "
                f"{fmt(row.get('s_per_step'), '.1f')}{row['mark']} | "
                f"{fmt(row.get('tokens_per_s'), ',.0f')}{row['mark']} | {loss_cell(row.get('final_loss'))} "
                f"| {levers_used(cfg)} | {row['prediction']} |"
            )
        lines += shared_note([rows[run][2] for run in members]) + [""]
    return lines


def render(calls: list[tuple[Path, list[str], str]], title: str, tables: bool = False) -> str:
    mean_row = v5_mean_row()
    tokens_v5 = v5_rows() * mean_row
    lines = [
        f"# {title}",
        "",
        "Synthetic Llama-2-70B (random weights, pre-quantized NF4 + double quant by "
        "`nextai-synth`), v5-shaped rows",
        "(`bench/gpu/v5_shaped.py`), each run through the real Axolotl CLI (a run with an `engine`: through",
        "`bench/gpu/standalone.py`) with only `base_model`, `max_steps`, output paths, saving off,",
        "`nextai_gpu_memory_cap_gb: 40` and `nextai_peak_tflops: 790` overridden.",
        "",
    ]
    calls = [(unpack(folder), runs, command) for folder, runs, command in calls]
    if tables:
        lines += render_tables([(folder, runs) for folder, runs, _ in calls], mean_row)
    for number, (folder, runs, command) in enumerate(calls, 1):
        lines += render_call(
            folder, runs, command, mean_row, f"Call {number}" if len(calls) > 1 else "Results"
        )
    lines += [
        f"- 40 GB cap = {GIB_40GB:.2f} GiB; the paper's trainable count is {TRAINABLE_PAPER:,}.",
        (
            f"- v5 epoch hours = {tokens_v5 / 1e6:.1f} M real tokens (v5 length model of "
            f"bench/gpu/v5_shaped.py: {v5_rows():,} rows, {', '.join(V5_LENGTHS)}) / real tokens/s. The "
            "first optimizer step (one-off costs) is excluded from tokens/s and s/step."
        ),
        (
            "- Peak allocated/reserved: max over steps of `torch.cuda.max_memory_allocated/reserved()` read "
            "by the plugin's report; nvidia-smi (the run's own processes where it lists them, else the "
            "card) adds the CUDA context, cuBLAS workspace and the paged optimizer's managed memory."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--call", action="append", type=Path, required=True, help="a fetched call's folder")
    parser.add_argument(
        "--runs", action="append", nargs="+", required=True, help="that call's runs, baseline first"
    )
    parser.add_argument("--command", action="append", required=True, help="that call's device command")
    parser.add_argument(
        "--title", default="Llama-2-70B QLoRA under a 40 GB cap, through the real Axolotl CLI"
    )
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument(
        "--tables",
        action="store_true",
        help="first, the paper's Tables 4-6 from the runs that have them (a run in several calls: the last "
        "that started it)",
    )
    args = parser.parse_args()
    if not len(args.call) == len(args.runs) == len(args.command):
        parser.error("give each --call its own --runs and --command")
    # @tables expanded
    runs = [[spec.split(":")[0] for spec in run_specs(call_runs, 0)] for call_runs in args.runs]
    text = render(list(zip(args.call, runs, args.command, strict=True)), args.title, args.tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
