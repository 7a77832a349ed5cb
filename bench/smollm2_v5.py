"""The real model at full size: SmolLM2-135M-Instruct QLoRA-trained on mixture v5 from every real row in the
repository, with the faithful and the fast recipe (both scaled to the model), then base vs fine-tuned on the
paper's benchmark families and the loss on held-out real rows.

- data: `data_builders/real/v5-real.yaml` (the sample's Dolly/Platypus/codegen/FaithDial rows at v5's
  percentages, 979 LIMA rows, the 1,000 Multi-News rows of v5's 10 %), near-deduplicated and decontaminated
  against every item scored below; needs MiniLM, so it runs where the package is installed.
- train: `recipes/smollm2-135m-v5.yml` and `recipes/smollm2-135m-v5-fast.yml` through the real Axolotl CLI. On
  a CPU: the CPU recipe's changes (fp32, SDPA, no checkpointing or Liger) and a reduced, stated size.
- eval: base, faithful adapter and fast adapter in one process (`nextai-eval`'s runner; the base is the
  adapter switched off): the full MMLU test sets of the paper's 17 subjects, BBQ's six categories present,
  TruthfulQA, paired changes with 95 % intervals, and the loss per response token on
  `data_builders/real/rows/heldout.jsonl`. On a CPU: from the paper's own 50 items per task (`helm-50`), 5 per
  MMLU subject, 50 BBQ and 50 TruthfulQA (two busy cores score about a request a second; all 850 MMLU items
  would take hours per model).

    python bench/smollm2_v5.py --stage data                  # here: data/smollm2-v5.jsonl
    # CUDA if present, else the CPU size: DIR/smollm2_v5.json
    python bench/smollm2_v5.py --stage run --out DIR
    python bench/smollm2_v5.py --stage eval --out DIR        # evaluate DIR's adapters again (no training)
    # bench/results/*.md
    python bench/smollm2_v5.py --stage report --results DIR/smollm2_v5.json --command "..."

On the GPU machine (no MiniLM, no Axolotl): bench/gpu/smollm2_v5.sh carries the data, model and wheels over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repo first: tests/data_builders (a namespace folder) must not shadow it
from axolotl_nextai.models.real_model import DEFAULT_OUT

RECIPES = {"faithful": "smollm2-135m-v5.yml", "fast": "smollm2-135m-v5-fast.yml"}
CPU_RECIPE = "smollm2-135m-v5-cpu.yml"
DATA = Path("data/smollm2-v5.jsonl")
HELDOUT = Path("data_builders/real/rows/heldout.jsonl")
ITEMS = Path("data_builders/benchmark_items")
MODEL = DEFAULT_OUT
# What each device runs. GPU: the paper's recipes at full size; BBQ limited to a seeded random 2,000 of its
# 11,956 items (its 12 answer variants per item make it ~3/4 of all requests). CPU: what 2 cores finish in
# hours.
SIZES = {
    "cuda": {
        "items": "full",
        "limits": ["none", "bbq=2000"],
        "rows": None,
        "sequence_len": None,
        "batch_size": 32,
    },
    "cpu": {
        "items": "helm-50",
        "limits": ["mmlu=5", "bbq=50", "truthfulqa=50"],
        "rows": 240,
        "sequence_len": 512,
        "batch_size": 1,
    },
}
PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "axolotl", "accelerate", "lm_eval", "gguf")
OFFLINE = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def build_data() -> None:
    """data/smollm2-v5.jsonl from v5-real.yaml, decontaminated against the full benchmark items."""
    from data_builders.nextai_data import main as nextai_data

    os.environ.update(OFFLINE)
    os.chdir(ROOT)  # the mixture's paths are relative to the repository root
    nextai_data(
        ["build", "--mixture", "data_builders/real/v5-real.yaml", "--sample", "--out", str(DATA)],
        standalone_mode=False,
    )


def recipe_config(name: str, device: str, epochs: int, out: Path) -> dict:
    """A recipe with its output paths moved under `out` and the epochs asked for; on a CPU also the CPU
    recipe's changes (where smollm2-135m-v5-cpu.yml differs from smollm2-135m-v5.yml, less its data, steps,
    cutoff and warm-up), no Liger (Triton: CUDA only), no kept matmuls (the CPU recipe does not checkpoint),
    eager attention for packed rows, and the CPU size."""
    cfg = yaml.safe_load((ROOT / "recipes" / RECIPES[name]).read_text())
    if device == "cpu":
        cpu = yaml.safe_load((ROOT / "recipes" / CPU_RECIPE).read_text())
        faithful = yaml.safe_load((ROOT / "recipes" / RECIPES["faithful"]).read_text())
        skip = {
            "datasets",
            "max_steps",
            "sequence_len",
            "warmup_steps",
            "output_dir",
            "dataset_prepared_path",
        }
        cfg.update({k: v for k, v in cpu.items() if v != faithful.get(k) and k not in skip})
        cfg["plugins"] = ["axolotl_nextai.NextAIPlugin"]
        for key in [k for k in cfg if k.startswith("liger_")] + [
            "activation_offloading",
            "nextai_saved_matmuls",
        ]:
            cfg.pop(key, None)
        if cfg.get("sample_packing"):  # transformers' block-diagonal mask from position_ids (CPU-safe)
            cfg["attn_implementation"] = "eager"
        cfg["sequence_len"] = SIZES["cpu"]["sequence_len"]
        cfg["datasets"] = [{**d, "path": str(out / "train.jsonl")} for d in cfg["datasets"]]
    cfg.update(
        num_epochs=epochs,
        output_dir=str(out / name),
        dataset_prepared_path=str(out / f"{name}-prepared"),
        save_strategy="no",
        saves_per_epoch=None,
    )
    return cfg


def cpu_rows(out: Path) -> int:
    """The CPU size's training rows: a seeded sample of the mixture, the same rows for both recipes."""
    import random

    rows = (ROOT / DATA).read_text("utf-8").splitlines(keepends=True)
    chosen = sorted(random.Random(0).sample(range(len(rows)), min(SIZES["cpu"]["rows"], len(rows))))
    (out / "train.jsonl").write_text("".join(rows[i] for i in chosen), "utf-8")
    return len(chosen)


def train(name: str, device: str, epochs: int, out: Path) -> dict:
    """One recipe through `accelerate launch -m axolotl.cli.train`; its run report and wall time."""
    cfg = recipe_config(name, device, epochs, out)
    path = out / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "bf16" if device == "cuda" else "no",
        "--dynamo_backend",
        "no",
        "-m",
        "axolotl.cli.train",
        str(path),
    ]
    start = time.time()
    with (out / f"{name}.log").open("w") as log:
        run = subprocess.run(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            env={
                **os.environ,
                **OFFLINE,
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            },
        )
    if run.returncode:
        raise SystemExit(f"{name}: training failed (exit {run.returncode}); see {out / f'{name}.log'}")
    report = json.loads((out / name / "nextai_report.json").read_text())
    keep = (
        "steps",
        "first_loss",
        "final_loss",
        "losses",
        "real_tokens",
        "trained_tokens",
        "tokens_per_s",
        "peak_memory_allocated_gib",
        "trainable_params",
        "wall_time_s",
    )
    return {"config": cfg, "wall_s": round(time.time() - start, 1), **{k: report.get(k) for k in keep}}


def evaluate(device: str, out: Path) -> dict:
    """Base, faithful and fast rows on the same items, in one process; paired changes against the base."""
    from peft import PeftModel

    from axolotl_nextai.eval import runner
    from axolotl_nextai.eval.stats import compare
    from axolotl_nextai.eval.tables import source_note
    from axolotl_nextai.eval.tasks import parse_limits
    from axolotl_nextai.models.checkpoint import load_base_and_adapter

    size = SIZES[device]
    cutoff = (
        size["sequence_len"]
        or yaml.safe_load((ROOT / "recipes" / RECIPES["faithful"]).read_text())["sequence_len"]
    )
    options = runner.EvalOptions(
        base_model=str(ROOT / MODEL),
        data_dir=ROOT / ITEMS / size["items"],
        limits=parse_limits(size["limits"]),
        batch_size=size["batch_size"],
        heldout=ROOT / HELDOUT,
        heldout_cutoff=cutoff,
    )
    prepared = runner.prepare(options)
    # bf16 on a GPU, fp32 on a CPU, not NF4: what nextai-eval does on a CPU, and a 135M model in 4-bit spends
    # its time dequantizing
    model, tokenizer = load_base_and_adapter(str(ROOT / MODEL), str(out / "faithful"), load_in_4bit=False)
    assert isinstance(model, PeftModel)
    model.load_adapter(str(out / "fast"), adapter_name="fast")
    rows, start = {}, time.time()
    with runner.task_manager(prepared) as manager:
        with model.disable_adapter():
            rows["base"], _ = runner.score(model, tokenizer, manager, options, prepared)
        for name, adapter in (("faithful", "default"), ("fast", "fast")):
            model.set_adapter(adapter)
            rows[name], _ = runner.score(model, tokenizer, manager, options, prepared)
    note = source_note(runner.lm_eval_version(), options.limits)
    return {
        "items": size["items"],
        "limits": size["limits"],
        "heldout_cutoff": cutoff,
        "note": note,
        "eval_s": round(time.time() - start, 1),
        "rows": rows,
        "change": {name: compare(rows["base"], rows[name]) for name in ("faithful", "fast")},
    }


def machine(device: str) -> dict:
    import torch

    info = {
        "device": device,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {p: metadata.version(p.replace("_", "-")) for p in PACKAGES if _installed(p)},
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _installed(package: str) -> bool:
    try:
        metadata.version(package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return False
    return True


def run(device: str, epochs: int, out: Path, retrain: bool = True) -> Path:
    """Train both recipes (unless `retrain` is off and `out` holds their results), then evaluate."""
    path = out / "smollm2_v5.json"
    if not retrain:
        if not path.is_file():
            raise SystemExit(f"{path} is missing: --stage eval needs a finished --stage run in --out")
        results = json.loads(path.read_text())
        results["eval"] = evaluate(results["machine"]["device"], out)
        path.write_text(json.dumps(results, indent=2, default=str))
        return path
    out.mkdir(parents=True, exist_ok=True)
    if not (ROOT / DATA).is_file():
        raise SystemExit(f"{DATA} is missing: build it first (python bench/smollm2_v5.py --stage data)")
    if not (ROOT / MODEL / "config.json").is_file():
        raise SystemExit(f"{MODEL} is missing: run nextai-real-model first")
    rows = cpu_rows(out) if device == "cpu" else sum(1 for _ in (ROOT / DATA).open())
    results = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "epochs": epochs,
        "machine": machine(device),
        "data_rows": rows,
        "train": {},
    }
    for name in RECIPES:  # written after each stage: a run cut off at its time limit keeps what it finished
        results["train"][name] = train(name, device, epochs, out)
        path.write_text(json.dumps(results, indent=2, default=str))
    results["eval"] = evaluate(device, out)
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def loss_line(name: str, run: dict) -> str:
    return (
        f"| {name} | {run['steps']} | {run['trained_tokens']:,} | {run['first_loss']:.3f} | "
        f"{run['final_loss']:.3f} | {run['tokens_per_s'] or 0:,.0f} | {run['wall_s']:.0f} |"
    )


def report(results_path: Path, command: str, out: Path) -> None:
    """The Markdown report: setup, held-out loss, the Table-8-style tables, training, versions and machine."""
    from axolotl_nextai.eval.tables import to_markdown

    res = json.loads(results_path.read_text())
    ev, m = res["eval"], res["machine"]
    held = {name: row.get("heldout") for name, row in ev["rows"].items()}
    lines = [
        f"# SmolLM2-135M-Instruct, QLoRA on mixture v5 from real rows: base vs fine-tuned ({res['date']})",
        "",
        f"Device: **{m['device']}** ({m.get('gpu') or m['cpu']}, {m['cpu_count']} CPU cores). "
        + (
            "Full size: the recipes as generated, "
            if m["device"] == "cuda"
            else f"**Reduced CPU size** (no GPU run): a seeded {res['data_rows']} of the mixture's rows, cut "
            f"at {res['train']['faithful']['config']['sequence_len']} tokens, the CPU recipe's changes "
            "(fp32, SDPA, no checkpointing; the fast recipe without Liger, eager attention for its packs); "
        )
        + f"{res['epochs']} epoch(s) over {res['data_rows']:,} rows of data_builders/real/v5-real.yaml.",
        "",
        f"Command: `{command}`",
        "",
        "## Held-out loss (what the test asks to fall)",
        "",
        (
            f"Loss per response token on `{HELDOUT}` (real LIMA and Multi-News rows no training row "
            f"contains), rows cut at {ev['heldout_cutoff']} tokens as in training; rows with no response "
            "token left are counted, not scored. Change: paired over rows, 95 % interval."
        ),
        "",
        "| model | held-out loss | change vs base | rows scored (skipped) | tokens |",
        "|---|---|---|---|---|",
    ]
    for name, h in held.items():
        change = ev["change"].get(name, {}).get("heldout")
        cell = (
            "—"
            if change is None
            else f"{change['change']:+.4f} [{change['interval'][0]:+.4f}, {change['interval'][1]:+.4f}]"
        )
        lines.append(
            f"| {name} | {h['loss']:.4f} | {cell} | {h['rows']} ({h['skipped_rows']}) | {h['tokens']:,} |"
        )
    for name in ("faithful", "fast"):
        lines += [
            "",
            f"## Benchmarks: base vs {name} ({ev['items']} items)",
            "",
            to_markdown(
                [
                    ("SmolLM2-135M-Instruct (base)", ev["rows"]["base"]),
                    (f"+ v5 QLoRA, {RECIPES[name]}", ev["rows"][name]),
                ],
                ev["note"],
                ev["change"][name],
            ).rstrip(),
        ]
    lines += [
        "",
        "## Training",
        "",
        "| recipe | steps | trained tokens | first loss | final loss | real tok/s | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [loss_line(name, run) for name, run in res["train"].items()]
    lines += [
        "",
        f"Evaluation of the three rows took {ev['eval_s']:.0f} s.",
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + f"; Python {m['python']}",
        "",
    ]
    out.write_text("\n".join(lines))
    print(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage",
        choices=["data", "run", "eval", "report", "all"],
        default="all",
        help="eval: evaluate the adapters a finished run left in --out again, without training",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--epochs", type=int, default=1, help="1-3 (the paper: 1; its v3: 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "smollm2_v5")
    parser.add_argument("--results", type=Path, default=None, help="--stage report: a run's smollm2_v5.json")
    parser.add_argument("--report", type=Path, default=None, help="the Markdown report to write")
    parser.add_argument("--command", default=" ".join(["python", *sys.argv]), help="the command to cite")
    args = parser.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.stage in ("data", "all"):
        build_data()
    results = args.results
    if args.stage in ("run", "eval", "all"):
        results = run(args.device, args.epochs, args.out, retrain=args.stage != "eval")
    if args.stage in ("report", "all"):
        date = dt.date.today().isoformat()
        report(
            results or args.out / "smollm2_v5.json",
            args.command,
            args.report or ROOT / "bench" / "results" / f"smollm2_v5-{args.device}-{date}.md",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
