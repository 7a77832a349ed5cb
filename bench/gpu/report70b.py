"""Turn one `bench/gpu/gpu70b.sh` call's results into `bench/results/gpu70b-<date>.md`.

    python bench/gpu/report70b.py FETCHED_DIR --command "the exact device command" [--out bench/results]

FETCHED_DIR holds `gpu70b.tgz` (or its unpacked files): `env.txt`, and per recipe `<name>.report.json` (the
plugin's run report), `<name>.smi.txt` (nvidia-smi memory.used every 0.5 s), `<name>.log`, `<name>.rc`.
The first recipe named is the baseline of the ratio column.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from v5_shaped import V5_LENGTHS, sample_lengths, v5_rows  # noqa: E402

N_70B = 68.71e9  # linear weights of Llama-2-70B, lm_head included (../shared/notes/gpu-memory.md)
H100_TFLOPS = 790.0  # bf16 matmul rate measured on the lent card
TRAINABLE_PAPER = 17_039_360
GIB_40GB = 40e9 / 2**30


def v5_tokens() -> float:
    """Real tokens of one v5 epoch under the v5 length model (mean of a large sample x v5's rows)."""
    lengths = [n for _, n in sample_lengths(20000, seed=1)]
    return v5_rows() * sum(lengths) / len(lengths)


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


def recipe_row(folder: Path, name: str, tokens_v5: float) -> dict:
    rc = (folder / f"{name}.rc").read_text().strip() if (folder / f"{name}.rc").exists() else "rc=missing"
    log = (folder / f"{name}.log").read_text(errors="replace") if (folder / f"{name}.log").exists() else ""
    row = {"recipe": name, "rc": rc, "attention": attention_used(log), "smi_peak_mib": smi_peak_mib(folder / f"{name}.smi.txt")}
    report_path = folder / f"{name}.report.json"
    if not report_path.exists():
        row["error"] = (log.strip().splitlines() or ["no log"])[-1][:300]
        return row
    report = json.loads(report_path.read_text())
    history = report["history"]
    steady = history[1:] if len(history) > 1 else history
    seconds = steady[-1]["elapsed_s"] - (history[0]["elapsed_s"] if len(history) > 1 else 0.0)
    tokens_per_s = report["tokens_per_s"]
    row.update(
        steps=report["steps"],
        trainable=report["trainable_params"],
        peak_alloc=report["peak_memory_allocated_gib"],
        peak_reserved=report["peak_memory_reserved_gib"],
        tokens_per_s=tokens_per_s,
        s_per_step=seconds / len(steady) if steady else None,
        tokens_per_step=(steady[-1]["real_tokens"] - (history[0]["real_tokens"] if len(history) > 1 else 0)) / len(steady),
        mfu=6 * N_70B * tokens_per_s / (H100_TFLOPS * 1e12) if tokens_per_s else None,
        v5_hours=tokens_v5 / tokens_per_s / 3600 if tokens_per_s else None,
        final_loss=report["final_loss"],
    )
    return row


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def render(folder: Path, names: list[str], command: str) -> str:
    env = (folder / "env.txt").read_text() if (folder / "env.txt").exists() else ""
    tokens_v5 = v5_tokens()
    rows = [recipe_row(folder, name, tokens_v5) for name in names]
    base = rows[0].get("tokens_per_s")
    lines = [
        "# Llama-2-70B QLoRA under a 40 GB cap, through the real Axolotl CLI",
        "",
        "Synthetic Llama-2-70B (random weights, pre-quantized NF4 + double quant by `nextai-synth`), v5-shaped rows",
        f"(`bench/gpu/v5_shaped.py`), each recipe run with only `base_model`, `max_steps`, output paths,",
        "`nextai_gpu_memory_cap_gb: 40` and `nextai_peak_tflops: 790` overridden.",
        "",
        "## Machine and versions",
        "```",
        env.strip(),
        "```",
        "",
        "## Command",
        "```",
        command,
        "```",
        "",
        "## Results",
        "",
        "| recipe | exit | attention | steps | trainable | peak allocated GiB | peak reserved GiB | nvidia-smi peak MiB "
        "| real tok/s | vs first | s / optimizer step | real tokens / step | MFU (6N, 790 TFLOP/s) | v5 epoch (h) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['recipe']} | {r['rc']} | {r['attention']} | failed: {r['error']} |" + " |" * 10)
            continue
        ratio = r["tokens_per_s"] / base if base and r["tokens_per_s"] else None
        lines.append(
            f"| {r['recipe']} | {r['rc']} | {r['attention']} | {r['steps']} | {r['trainable']:,} | {fmt(r['peak_alloc'], '.2f')} "
            f"| {fmt(r['peak_reserved'], '.2f')} | {fmt(r['smi_peak_mib'], 'd')} | {fmt(r['tokens_per_s'], ',.0f')} "
            f"| {fmt(ratio, '.2f')}x | {fmt(r['s_per_step'], '.2f')} | {fmt(r['tokens_per_step'], ',.0f')} "
            f"| {fmt(None if r['mfu'] is None else 100 * r['mfu'], '.1f')} % | {fmt(r['v5_hours'], '.1f')} |"
        )
    lines += [
        "",
        f"- 40 GB cap = {GIB_40GB:.2f} GiB; the paper's trainable count is {TRAINABLE_PAPER:,}.",
        f"- v5 epoch hours = {tokens_v5 / 1e6:.1f} M real tokens (v5 length model of bench/gpu/v5_shaped.py: "
        f"{v5_rows():,} rows, {', '.join(V5_LENGTHS)}) / real tokens/s. The first optimizer step (one-off costs) is "
        "excluded from tokens/s and s/step.",
        "- Peak allocated/reserved: max over steps of `torch.cuda.max_memory_allocated/reserved()` read by the plugin's "
        "report; nvidia-smi adds the CUDA context, cuBLAS workspace and the paged optimizer's managed memory.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--recipes", nargs="+", required=True, help="recipe names (file stems), baseline first")
    parser.add_argument("--command", required=True)
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    args = parser.parse_args()
    text = render(unpack(args.folder), args.recipes, args.command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
