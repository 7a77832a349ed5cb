"""Does the fast recipe learn like the faithful one? Both trained on the tiny CPU Llama, same rows, one epoch.

The fast recipe (recipes/llama2-70b-v5-fast.yml: packing, 4 packs per optimizer step, its learning rate) must
see the same tokens and give the same loss curve as the paper's recipe. The faithful run is
recipes/tiny-cpu.yml; the packed run adds the keys in which the fast recipe differs from the v5 template, read
from those two files, less Liger and activation offloading (CUDA only) and output paths, with the warm-up
scaled. Rows are v5-shaped (bench/gpu/v5_shaped.py) with lengths and cutoff halved to fit the tiny model's 512
positions, their words Zipf-distributed so that there is something to learn. Both go through the real CLI
(`accelerate launch -m axolotl.cli.train`); the curves are each run's `nextai_report.json` history, loss
against cumulative trained (label) tokens.

Before training, one forward pass checks that packed rows do not see each other on this attention path: eager
attention with Axolotl's packing drops the attention mask and transformers builds a block-diagonal causal mask
from the restarting `position_ids`.

    .venv/bin/python bench/fast_vs_faithful_cpu.py [--rows 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import platform
import shlex
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The repo first: with only bench/ on the path, tests/data_builders (a namespace folder) shadows the package.
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "gpu")]
sys.path.append(str(ROOT / "tests"))
from axolotl_launch import launch_train, tiny_cpu_config, train_command
from v5_shaped import CUTOFF, make_rows, sample_lengths

from axolotl_nextai.models.tiny_model import TINY_LLAMA, build_tiny_llama
from axolotl_nextai.run.report import REPORT_NAME

RECIPES = ROOT / "recipes"
NOT_ON_CPU = {
    "plugins",
    "output_dir",
    "dataset_prepared_path",
    "activation_offloading",
    "attn_implementation",
    "warmup_steps",
    # Liger's plugin, the offload's CUDA streams and flex attention's backward need CUDA (offloading moves
    # memory, flex
}
# attends as the tiny recipe's attention does, not other math); paths are per run; the warm-up is scaled to
# the tiny run's (`fast_warmup`)
SCALE = 0.5  # v5 lengths and the 1,024 cutoff halved: the tiny Llama has 512 positions
BINS = 10
PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "axolotl", "accelerate")


def fast_overrides() -> dict:
    """The keys in which the fast recipe differs from the v5 template, less what cannot run on a CPU."""
    fast = yaml.safe_load((RECIPES / "llama2-70b-v5-fast.yml").read_text())
    template = yaml.safe_load((RECIPES / "llama2-70b-v5.yml").read_text())
    return {
        key: value
        for key, value in fast.items()
        if value != template.get(key) and key not in NOT_ON_CPU and not key.startswith("liger_")
    }


def fast_warmup(faithful_warmup: int) -> int:
    """The fast recipe's warm-up on a run whose faithful warm-up is `faithful_warmup` steps: the same share as
    between the two recipes (the same warm-up tokens)."""
    fast = yaml.safe_load((RECIPES / "llama2-70b-v5-fast.yml").read_text())["warmup_steps"]
    template = yaml.safe_load((RECIPES / "llama2-70b-v5.yml").read_text())["warmup_steps"]
    return max(1, round(faithful_warmup * fast / template))


def packing_isolation(model_dir: Path, lengths=(37, 53)) -> float:
    """Max |logit difference| of each row alone vs the rows packed into one sequence, no attention mask, eager
    attention: what the packed run's forward pass gets. Zero (to float error) means no row sees another."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, model.config.vocab_size, (1, n), generator=gen) for n in lengths]
    with torch.no_grad():
        alone = [model(input_ids=row).logits for row in rows]
        packed = model(
            input_ids=torch.cat(rows, 1),
            use_cache=False,  # as in training: with a cache,
            position_ids=torch.cat([torch.arange(n) for n in lengths])[None],
        ).logits  # no packed mask
    return float((packed - torch.cat(alone, 1)).abs().max())


def pack_fill(lengths: list[int], capacity: int) -> float:
    """Share of pack slots that hold row tokens when Axolotl's sampler packs rows of `lengths` (rest:
    padding)."""
    from axolotl.utils.samplers import MultipackBatchSampler
    from torch.utils.data import RandomSampler

    sampler = MultipackBatchSampler(
        RandomSampler(range(len(lengths))),
        batch_size=1,
        batch_max_len=capacity,
        lengths=np.array(lengths),
        bin_size=200,
        num_processes=1,
    )
    return sampler.efficiency()


def curve(report: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trained tokens before each step, trained tokens after it, loss) of each logged optimizer step."""
    rows = [row for row in report["history"] if row.get("loss") is not None]
    after = np.array([row["trained_tokens"] for row in rows], dtype=float)
    before = np.concatenate([[0.0], after[:-1]])
    return before, after, np.array([row["loss"] for row in rows])


def binned(report: dict, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token-weighted mean loss in each token interval (a step's loss counts for each of its trained tokens),
    and the optimizer steps that end in it."""
    before, after, loss = curve(report)
    means, steps = [], []
    for lo, hi in itertools.pairwise(edges):
        weight = np.clip(np.minimum(after, hi) - np.maximum(before, lo), 0, None)
        means.append(float((weight * loss).sum() / weight.sum()))
        steps.append(int(((after > lo) & (after <= hi)).sum()))
    return np.array(means), np.array(steps)


def plot(reports: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, report in reports.items():
        _, after, loss = curve(report)
        ax.plot(after, loss, marker=".", label=f"{name} ({len(loss)} steps)")
    ax.set_xlabel("trained tokens seen (labels not -100)")
    ax.set_ylabel("training loss")
    ax.set_title("tiny CPU Llama, same rows: faithful vs packed (fast recipe less Liger) vs fused")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    date = dt.date.today().isoformat()
    work = Path(tempfile.mkdtemp(prefix="fast-vs-faithful-"))
    model = build_tiny_llama(work / "model")
    isolation = packing_isolation(model)
    print(f"packed vs alone, eager, no mask: max |logit diff| {isolation:.2e}")

    from transformers import AutoTokenizer

    data = work / "rows.jsonl"
    rows = make_rows(AutoTokenizer.from_pretrained(model), args.rows, scale=SCALE, zipf=True)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cutoff = round(1024 * SCALE)
    assert cutoff <= TINY_LLAMA["max_position_embeddings"]
    base = {
        "datasets": [{"path": str(data), "type": "axolotl_nextai.alpaca"}],
        "sequence_len": cutoff,
        "max_steps": None,
    }  # one epoch of the same rows for both
    tiny_warmup = yaml.safe_load((RECIPES / "tiny-cpu.yml").read_text())["warmup_steps"]
    overrides = {**fast_overrides(), "warmup_steps": fast_warmup(tiny_warmup)}
    # The same faithful recipe with another seed (another row order) is the yardstick for "tracks".
    # nextai_fuse_accumulation: the faithful recipe's math, LoRA dropout's masks drawn per batch
    runs = {
        "faithful": base,
        "faithful seed 7": {**base, "seed": 7},
        "packed": {**base, **overrides},
        "faithful fused": {**base, "nextai_fuse_accumulation": True},
    }
    reports, commands = {}, {}
    for name, extra in runs.items():
        folder = work / name.replace(" ", "-")
        folder.mkdir()
        cfg = tiny_cpu_config(model, folder, **extra)
        commands[name] = shlex.join(train_command(cfg, folder)[0])
        result = launch_train(cfg, folder, timeout=1500)
        (folder / "train.log").write_text(result.stdout + result.stderr)
        if result.returncode:
            print(result.stderr[-4000:])
            sys.exit(f"{name}: rc={result.returncode}, log in {folder / 'train.log'}")
        reports[name] = json.loads((folder / "out" / REPORT_NAME).read_text())
        r = reports[name]
        print(
            f"{name}: {r['steps']} steps, {r['trained_tokens']:,} trained / {r['real_tokens']:,} real "
            f"tokens, loss {r['first_loss']:.4f} -> {r['final_loss']:.4f}, {r['wall_time_s']:.0f} s"
        )

    faithful, packed = reports["faithful"], reports["packed"]
    seen = min(r["trained_tokens"] for r in reports.values())
    edges = np.linspace(0, seen, BINS + 1)
    (means_f, steps_f), (means_s, _), (means_p, steps_p), (means_u, _) = (
        binned(r, edges) for r in reports.values()
    )
    gaps, seed_gaps, fused_gaps = means_p - means_f, means_s - means_f, means_u - means_f
    slots = (
        packed["steps"] * overrides["micro_batch_size"] * overrides["gradient_accumulation_steps"] * cutoff
    )
    fill = packed["real_tokens"] / slots
    # The length model's fill, on these rows (compare `fill`) and on the GPU run's (bench/gpu/gpu70b.sh)
    model_fill = pack_fill([tokens for _, tokens in sample_lengths(args.rows, scale=SCALE)], cutoff)
    gpu_fill = pack_fill([tokens for _, tokens in sample_lengths(1000)], CUTOFF)
    png = args.out_dir / f"fast_vs_faithful_cpu-{date}.png"
    plot(reports, png)

    versions = " | ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    summary = " ".join(__doc__.split("\n\n")[0].split())  # the first paragraph, however wrapped
    lines = [
        "# Fast vs faithful recipe on the tiny CPU Llama: loss against tokens seen",
        "",
        f"Written by `bench/fast_vs_faithful_cpu.py` ({summary})",
        "",
        "## Machine and versions",
        "```",
        f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        f"cpu: {platform.processor() or platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores",
        f"python: {platform.python_version()}",
        f"versions: {versions}",
        "```",
        "",
        "## Command",
        "```",
        f".venv/bin/python bench/fast_vs_faithful_cpu.py --rows {args.rows}",
        *(f"{name}: {cmd}" for name, cmd in commands.items()),
        "```",
        (
            f"Data: {args.rows} v5-shaped rows of Zipf-distributed words (`make_rows(..., scale={SCALE}, "
            f"zipf=True)`), cutoff {cutoff}; the packed run adds `{json.dumps(overrides)}` (from "
            "recipes/llama2-70b-v5-fast.yml; Liger and activation offloading left out: CUDA only; the "
            "warm-up scaled by `fast_warmup`)."
        ),
        "",
        "## Results",
        "",
        "| run | optimizer steps | trained tokens | real tokens counted | first loss | final loss | wall s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {r['steps']} | {r['trained_tokens']:,} | {r['real_tokens']:,} | "
            f"{r['first_loss']:.4f} | {r['final_loss']:.4f} | {r['wall_time_s']:.0f} |"
            for name, r in reports.items()
        ),
        "",
        f"Token-weighted mean loss over each tenth of the first {seen:,.0f} trained tokens:",
        "",
        (
            "| trained tokens | faithful | packed | packed - faithful | seed 7 - seed 42 | fused - faithful "
            "| steps faithful | steps packed |"
        ),
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {lo:,.0f}-{hi:,.0f} | {f:.4f} | {p:.4f} | {g:+.4f} | {sg:+.4f} | {ug:+.4f} | {sf} | {sp} |"
            for lo, hi, f, p, g, sg, ug, sf, sp in zip(
                edges[:-1],
                edges[1:],
                means_f,
                means_p,
                gaps,
                seed_gaps,
                fused_gaps,
                steps_f,
                steps_p,
                strict=True,
            )
        ),
        "",
        (
            f"Max |gap| over the tenths: packed vs faithful **{np.abs(gaps).max():.4f}** (last tenth "
            f"{gaps[-1]:+.4f}); faithful with seed 7 vs seed 42 {np.abs(seed_gaps).max():.4f} (last tenth "
            f"{seed_gaps[-1]:+.4f}); faithful with `nextai_fuse_accumulation` vs without "
            f"{np.abs(fused_gaps).max():.4f} (last tenth {fused_gaps[-1]:+.4f}: the same rows and math; "
            "LoRA dropout's masks and Axolotl's unseeded LoRA initialisation differ)."
        ),
        (
            "Training wall time on this shared 2-core machine (other jobs ran beside it: a ratio, not a "
            f"speed): faithful {faithful['wall_time_s']:.0f} s, fused "
            f"{reports['faithful fused']['wall_time_s']:.0f} s of training."
        ),
        (
            "Packed rows alone vs packed together (eager, no mask, position_ids restarting): max |logit "
            f"diff| {isolation:.2e}."
        ),
        (
            f"Real tokens counted: packed / faithful = {packed['real_tokens']:,} / "
            f"{faithful['real_tokens']:,} (the same rows; Axolotl's packing drops an incomplete last "
            f"batch): rows fill {fill:.1%} of the packed run's {slots:,} slots. Axolotl's sampler on the "
            f"length model's target lengths (`sample_lengths`, before tokenization) fills {model_fill:.1%} "
            f"for these rows and {gpu_fill:.1%} for the GPU run's rows (`sample_lengths(1000)`, "
            f"{CUTOFF}-token packs)."
        ),
        "",
        f"![loss vs tokens]({png.name})",
        "",
    ]
    md = args.out_dir / f"fast_vs_faithful_cpu-{date}.md"
    md.write_text("\n".join(lines))
    print(f"wrote {md} and {png}; work dir {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
