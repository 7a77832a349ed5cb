"""Turn `bench/gpu/gpu70b.sh` calls' results into one `bench/results/gpu70b-*.md`, a section per call.

    python bench/gpu/report70b.py --call FETCHED_DIR --runs RUN ... --command "the device command" \
        [--call ... --runs ... --command ...] --out FILE.md

Each FETCHED_DIR holds `gpu70b.tgz` (or its unpacked files): `env.txt`, and per run `<name>.report.json` (the
plugin's run report), `<name>.cfg.yml` (the config trained), `<name>.smi.txt` (nvidia-smi memory.used every
0.5 s), `<name>.log`, `<name>.rc`. A RUN is a recipe path or an ablation of bench/gpu/ablations.yaml, whose
prediction is shown next to the measurement. The first run of a call is the baseline of its ratio column.
Without packing, a short run sees a biased set of row lengths (Axolotl's group_by_length serves each group of
200 rows longest first), so for such a run the report also fits seconds per optimizer step = micro-steps x a +
b x tokens and gives its tokens/s at v5's mean row length.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_config import ablation, load_run, run_name, run_specs
from v5_shaped import V5_LENGTHS, sample_lengths, v5_rows

from axolotl_nextai.architectures import ARCHITECTURES
from axolotl_nextai.footprint import optimizer_state_bytes
from axolotl_nextai.memory_budget import architecture
from axolotl_nextai.report import fmt

TRAINABLE_PAPER = 17_039_360
GIB_40GB = 40e9 / 2**30


def v5_mean_row() -> float:
    """Mean real tokens of a v5 row under the v5 length model (a large seeded sample)."""
    return statistics.fmean(n for _, n in sample_lengths(20000, seed=1))


def fit_step_cost(history: list[dict], micro_steps: int) -> tuple[float, float]:
    """(a, b): seconds per micro-step and per real token, least squares over the steps after the first."""
    tokens = np.diff([row["real_tokens"] for row in history])
    seconds = np.diff([row["elapsed_s"] for row in history])
    design = np.column_stack([np.full(len(tokens), float(micro_steps)), tokens.astype(float)])
    (a, b), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return float(a), float(b)


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


def smi_peak_mib(path: Path) -> int | None:
    values = [int(v) for v in path.read_text().split() if v.isdigit()] if path.exists() else []
    return max(values) if values else None


def failure(rc: str, log: str) -> str:
    """Why a run left no report: its time limit, the call's end, or the trainer's last error line."""
    if rc.startswith("rc=124"):
        return "stopped at RUN_TIMEOUT before its first report (written every 10 steps and at the end)"
    if rc == "rc=missing":
        return "not finished: the device call reached its time limit during this run"
    errors = [line for line in log.splitlines()
              if re.match(r"^[\w.]*(Error|Exception)\b", line) and "CalledProcessError" not in line]  # not the launcher's
    return errors[-1][:300] if errors else "no report and no error line in its log"


def run_config_used(folder: Path, run: str) -> dict:
    """The config the run trained: archived by gpu70b.sh, else rebuilt from the run's name."""
    archived = folder / f"{run_name(run)}.cfg.yml"
    return yaml.safe_load(archived.read_text()) if archived.exists() else load_run(run)


def run_row(folder: Path, run: str, mean_row: float) -> dict:
    name = run_name(run)
    cfg = run_config_used(folder, run)
    rc = (folder / f"{name}.rc").read_text().strip() if (folder / f"{name}.rc").exists() else "rc=missing"
    log = (folder / f"{name}.log").read_text(errors="replace") if (folder / f"{name}.log").exists() else ""
    row = {"recipe": name, "rc": rc, "attention": attention_used(log), "smi_peak_mib": smi_peak_mib(folder / f"{name}.smi.txt"),
           "prediction": ablation(run).get("prediction", "")}
    report_path = folder / f"{name}.report.json"
    if not report_path.exists():
        row["error"] = failure(rc, log)
        return row
    report = json.loads(report_path.read_text())
    history = report["history"]
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
        tokens_per_step=(steady[-1]["real_tokens"] - (history[0]["real_tokens"] if len(history) > 1 else 0)) / len(steady),
        mfu=report["mfu"],  # the plugin's 6N over nextai_peak_tflops, which gpu70b.sh sets to 790
        v5_hours=tokens_v5 / tokens_per_s / 3600 if tokens_per_s else None,
        final_loss=report["final_loss"],
    )
    if not cfg.get("sample_packing") and len(history) > 3:
        a, b = fit_step_cost(history, cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"])
        at_mean = mean_row / (a + b * mean_row)
        row.update(fit=(a, b), tokens_per_s_v5=at_mean, v5_hours_fit=tokens_v5 / at_mean / 3600)
    return row


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
        ("| run | exit | attention | steps | trainable | peak allocated GiB | peak reserved GiB | nvidia-smi peak MiB "
         "| real tok/s | vs first | s / optimizer step | real tokens / step | MFU (6N, 790 TFLOP/s) | v5 epoch (h) "
         "| predicted before the run |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['recipe']} | {r['rc']} | {r['attention']} | failed: {r['error']} |" + " |" * 10
                         + f" {r['prediction']} |")
            continue
        ratio = r["tokens_per_s"] / base if base and r["tokens_per_s"] else None
        lines.append(
            f"| {r['recipe']} | {r['rc']} | {r['attention']} | {r['steps']} | {r['trainable']:,} | {fmt(r['peak_alloc'], '.2f')} "
            f"| {fmt(r['peak_reserved'], '.2f')} | {fmt(r['smi_peak_mib'], 'd')} | {fmt(r['tokens_per_s'], ',.0f')} "
            f"| {fmt(ratio, '.2f')}x | {fmt(r['s_per_step'], '.2f')} | {fmt(r['tokens_per_step'], ',.0f')} "
            f"| {fmt(None if r['mfu'] is None else 100 * r['mfu'], '.1f')} % | {fmt(r['v5_hours'], '.1f')} "
            f"| {r['prediction']} |"
        )
    fitted = [r for r in rows if "fit" in r]
    if fitted:
        lines += ["", "Fitted step cost (no packing: the run's rows are not v5's mean, see above):", "",
                  ("| recipe | s per micro-step | ms per token | real tok/s at v5's mean row "
                   f"({mean_row:.0f} tokens) | v5 epoch (h) | fast vs this |"),
                  "|---|---|---|---|---|---|"]
        best = max(x.get("tokens_per_s") or 0 for x in rows)
        for r in fitted:
            lines.append(f"| {r['recipe']} | {r['fit'][0]:.3f} | {1e3 * r['fit'][1]:.3f} | {r['tokens_per_s_v5']:,.0f} "
                         f"| {r['v5_hours_fit']:.1f} | {best / r['tokens_per_s_v5']:.2f}x |")
    return lines + [""]


TABLES = {
    "Table 4": "LoRA rank at cutoff 4,096, paged AdamW 32-bit (micro-batch 1 x accumulation 4, attention + FFN output)",
    "Table 5": "LoRA target modules at the submission's settings (r 4, cutoff 1,024, paged AdamW 8-bit)",
    "Table 6": "FlashAttention-2 (SDPA on this machine) vs eager attention, at Table 4's r 8",
}
LEVERS = [  # (key, how it shows in the levers column)
    ("activation_offloading", "layer inputs on the CPU"), ("liger_glu_activation", "Liger"),
    ("nextai_dequant_chunk_mib", "dequant in {} MiB chunks"), ("nextai_tiled_mlp_shards", "MLP in {} shards"),
    ("nextai_embeddings_on_cpu", "embeddings on the CPU"), ("nextai_expandable_segments", "expandable segments"),
]


def levers_used(cfg: dict) -> str:
    used = [label.format(cfg[key]) for key, label in LEVERS if cfg.get(key)]
    return ", ".join(used) or "none"


def status(row: dict, cap_gib: float) -> str:
    """Fits (its peak reserved under the cap), out of memory, refused before loading, or the failure."""
    if "error" not in row:
        return "**fits**" if row["peak_reserved"] is None or row["peak_reserved"] <= cap_gib else "over the cap"
    if "OutOfMemoryError" in row["error"]:
        asked = re.search(r"Tried to allocate ([\d.]+ [GM]iB)", row["error"])
        return "out of memory" + (f" (a {asked.group(1)} request)" if asked else "")
    needed = re.search(r"ConfigError: (attn_implementation: eager).*?(at least [\d.]+ GiB)", row["error"])
    if needed:
        return f"refused before loading: {needed.group(1)} needs {needed.group(2)}"
    return f"failed: {row['error']}"


def paged_state_gib(cfg: dict) -> float:
    """Paged AdamW's state in CUDA managed memory: outside PyTorch's counters and the cap, in nvidia-smi's."""
    arch = architecture(str(cfg.get("base_model"))) or ARCHITECTURES["meta-llama/Llama-2-70b-hf"]
    return optimizer_state_bytes(arch, cfg["lora_r"], cfg["lora_target_modules"], cfg["optimizer"])[1] / 2**30


def render_tables(folder: Path, runs: list[str], mean_row: float) -> list[str]:
    """The paper's Tables 4-6 from the runs that carry a `paper:` entry, measured beside the paper's numbers."""
    lines = ["## Tables 4-6 under the 40 GB cap", "",
             (f"A run fits when its peak reserved memory stays under the cap ({GIB_40GB:.2f} GiB; PyTorch's allocator "
              "refuses anything beyond). The paper's numbers are its peak GPU memory without these levers."), ""]
    rows = {run: run_row(folder, run, mean_row) for run in runs if ablation(run).get("paper")}
    for table, about in TABLES.items():
        members = [run for run in rows if table in ablation(run)["paper"]]
        if not members:
            continue
        lines += [f"### {table}: {about}", "",
                  ("| row | paper (GB) | status under the cap | peak allocated GiB | peak reserved GiB | nvidia-smi peak MiB "
                   "| paged optimizer state GiB (outside the cap) | s / optimizer step | real tok/s | loss (last step) "
                   "| memory levers | predicted before the run |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for run in members:
            row, paper = rows[run], ablation(run)["paper"][table]
            cfg = run_config_used(folder, run)
            lines.append(
                f"| {paper['row']} | {fmt(paper.get('gb'), '.2f')} | {status(row, GIB_40GB)} "
                f"| {fmt(row.get('peak_alloc'), '.2f')} | {fmt(row.get('peak_reserved'), '.2f')} "
                f"| {fmt(row.get('smi_peak_mib'), 'd')} | {paged_state_gib(cfg):.2f} | {fmt(row.get('s_per_step'), '.1f')} "
                f"| {fmt(row.get('tokens_per_s'), ',.0f')} | {fmt(row.get('final_loss'), '.3f')} | {levers_used(cfg)} "
                f"| {row['prediction']} |"
            )
        lines.append("")
    return lines


def render(calls: list[tuple[Path, list[str], str]], title: str, tables: bool = False) -> str:
    mean_row = v5_mean_row()
    tokens_v5 = v5_rows() * mean_row
    lines = [
        f"# {title}",
        "",
        "Synthetic Llama-2-70B (random weights, pre-quantized NF4 + double quant by `nextai-synth`), v5-shaped rows",
        "(`bench/gpu/v5_shaped.py`), each run through the real Axolotl CLI with only `base_model`, `max_steps`,",
        "output paths, saving off, `nextai_gpu_memory_cap_gb: 40` and `nextai_peak_tflops: 790` overridden.",
        "",
    ]
    for number, (folder, runs, command) in enumerate(calls, 1):
        heading = f"Call {number}" if len(calls) > 1 else "Results"
        folder = unpack(folder)
        if tables:
            lines += render_tables(folder, runs, mean_row)
        lines += render_call(folder, runs, command, mean_row, heading)
    lines += [
        f"- 40 GB cap = {GIB_40GB:.2f} GiB; the paper's trainable count is {TRAINABLE_PAPER:,}.",
        (f"- v5 epoch hours = {tokens_v5 / 1e6:.1f} M real tokens (v5 length model of bench/gpu/v5_shaped.py: "
         f"{v5_rows():,} rows, {', '.join(V5_LENGTHS)}) / real tokens/s. The first optimizer step (one-off costs) "
         "is excluded from tokens/s and s/step."),
        ("- Peak allocated/reserved: max over steps of `torch.cuda.max_memory_allocated/reserved()` read by the "
         "plugin's report; nvidia-smi adds the CUDA context, cuBLAS workspace and the paged optimizer's managed "
         "memory."),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", action="append", type=Path, required=True, help="a fetched call's folder")
    parser.add_argument("--runs", action="append", nargs="+", required=True, help="that call's runs, baseline first")
    parser.add_argument("--command", action="append", required=True, help="that call's device command")
    parser.add_argument("--title", default="Llama-2-70B QLoRA under a 40 GB cap, through the real Axolotl CLI")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--tables", action="store_true", help="first, the paper's Tables 4-6 from the runs that have them")
    args = parser.parse_args()
    if not len(args.call) == len(args.runs) == len(args.command):
        parser.error("give each --call its own --runs and --command")
    runs = [[spec.split(":")[0] for spec in run_specs(call_runs, 0)] for call_runs in args.runs]  # @tables expanded
    text = render(list(zip(args.call, runs, args.command)), args.title, args.tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
