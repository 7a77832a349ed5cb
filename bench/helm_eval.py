"""HELM itself (crfm-helm 0.5.16, the challenge's evaluator) against `nextai-serve`, on the paper's subset of
the repository's real items, base and adapter, beside `nextai-eval`'s (lm-eval) numbers for the same items.

    make eval-helm     # after make demo; or:
    python bench/helm_eval.py --helm-venv .helm-venv --base-model .real-model/SmolLM2-135M-Instruct \\
        --adapter outputs/smollm2-135m-v5-cpu --out outputs/helm-eval

HELM runs from its own environment (`--helm-venv`), offline: the items of
`data_builders/benchmark_items/helm-50` are written where HELM's scenarios read their downloads
(`benchmark_output/scenarios/<name>/data/...`), so it finds them and downloads nothing. Each model is served
by `nextai-serve` and scored by `helm-run` through its `neurips/local` deployment (the challenge's HTTP
client); then `nextai-eval --compare-base` scores the same items through lm-eval. Writes
`bench/results/helm-<date>.md` and keeps HELM's own output under `--out`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gzip
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import click

from axolotl_nextai.serve.client import wait_until_up
from data_builders.paper_tasks import MMLU_SUBJECTS

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ROOT / "data_builders" / "benchmark_items"
HELM_VERSION = "0.5.16"
# bbq_scenario.py:81-93 (v0.5.16): `subject=all` reads every one of these files.
BBQ_CATEGORIES = (
    "Age",
    "Disability_status",
    "Gender_identity",
    "Nationality",
    "Physical_appearance",
    "Race_ethnicity",
    "Race_x_SES",
    "Race_x_gender",
    "Religion",
    "SES",
    "Sexual_orientation",
)
WHY_THEY_DIFFER = """## Why the two harnesses differ on the same items

- HELM asks each item as `multiple_choice_joint`: the choices lettered in the prompt (5 shots for MMLU and
  TruthfulQA), one token generated greedily, exact match against the correct letter. An answer that is not
  one of the letters (column above) is wrong, so a model that does not answer in the format can score below
  chance.
- lm-eval (`nextai-eval`) never lets the model answer: it compares log-likelihoods. MMLU: of the letters A-D
  after a zero-shot prompt; TruthfulQA mc1: of each whole answer after its fixed 6-example QA prompt; BBQ: of
  each whole answer. The model always picks one of the choices, so a small model sits near chance, not below.
- The two rank models alike only once a model answers in HELM's format; on a few dozen items, differences of
  a few items are noise (50 items: a 95 % interval of about +-14 points)."""
RUN_SPECS = [f"mmlu:model=neurips/local,subject={s}" for s in MMLU_SUBJECTS] + [
    "bbq:model=neurips/local,subject=all",
    "truthful_qa:model=neurips/local,task=mc_single",
]


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def place_items(items: Path, full: Path, scenarios: Path, mmlu_items: int | None = None) -> dict:
    """Write the items in the files HELM's MMLU, BBQ and TruthfulQA scenarios read (MMLU: the first
    `mmlu_items` of each subject, as `nextai-eval --limit mmlu=N` takes them); returns what was placed."""
    mmlu = 0
    for subject in MMLU_SUBJECTS:  # mmlu_scenario.py: data/{dev,test}/<subject>_<split>.csv, no header
        for split, name in (("dev", f"mmlu_{subject}.dev.jsonl"), ("test", f"mmlu_{subject}.jsonl")):
            rows = [[r["question"], *r["choices"], "ABCD"[r["answer"]]] for r in read_jsonl(items / name)]
            rows = rows[:mmlu_items] if split == "test" else rows
            mmlu += len(rows) if split == "test" else 0
            write_csv(scenarios / "mmlu" / "data" / split / f"{subject}_{split}.csv", rows)

    bbq = read_jsonl(items / "bbq.jsonl")  # bbq_scenario.py: data/<Category>, BBQ's own JSONL lines
    counts = {c: sum(r["category"] == c for r in bbq) for c in BBQ_CATEGORIES}
    unknown = {r["category"] for r in bbq} - set(BBQ_CATEGORIES)
    if unknown:
        raise click.ClickException(f"{items / 'bbq.jsonl'}: categories HELM does not read: {sorted(unknown)}")
    in_repository = {r["category"] for r in read_jsonl(full / "bbq.jsonl.gz")}
    (scenarios / "bbq" / "data").mkdir(parents=True, exist_ok=True)
    for category in BBQ_CATEGORIES:
        lines = "".join(json.dumps(r) + "\n" for r in bbq if r["category"] == category)
        (scenarios / "bbq" / "data" / category).write_text(lines, encoding="utf-8")

    scored = read_jsonl(items / "truthfulqa_mc1.jsonl")  # truthful_qa_scenario.py: data/TruthfulQA.csv
    # Its first 20 % rows are the shots (truthful_qa_scenario.py:68,154): n // 4 + n rows score exactly the n.
    shot_rows = len(scored) // 4
    asked = {r["question"] for r in scored}
    shots = [r for r in read_jsonl(full / "truthfulqa_mc1.jsonl.gz") if r["question"] not in asked]
    header = ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"]
    rows = [
        [
            "Adversarial",
            r["category"],
            r["question"],
            r["mc1_targets"]["choices"][0],
            "",
            "; ".join(r["mc1_targets"]["choices"][1:]),
            "",
        ]
        for r in shots[:shot_rows] + scored
    ]
    write_csv(scenarios / "truthful_qa" / "data" / "TruthfulQA.csv", [header, *rows])
    return {
        "bbq": counts,
        "bbq_in_repository": sorted(in_repository),
        "truthfulqa_shots": shot_rows,
        "truthfulqa": len(scored),
        "mmlu": mmlu,
    }


@contextlib.contextmanager
def served(base_model: str, adapter: str | None, port: int, log: Path):
    """`nextai-serve` on `port` until the block ends; its log (refusals included) in `log`."""
    cmd = [
        sys.executable,
        "-m",
        "axolotl_nextai.serve.nextai_serve",
        "--base-model",
        base_model,
        "--port",
        str(port),
    ]
    cmd += ["--adapter", adapter] if adapter else []
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", 600, server.pid)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def helm_run(
    helm_venv: Path, workdir: Path, suite: str, url: str, max_instances: int, log: Path
) -> list[str]:
    """`helm-run` of the paper's subset against `url`; the command, as run."""
    conf = workdir / "run_specs.conf"
    conf.write_text(
        "entries: [\n" + "".join(f'  {{description: "{d}", priority: 1}},\n' for d in RUN_SPECS) + "]\n"
    )
    cmd = [
        str(helm_venv.resolve() / "bin" / "helm-run"),
        "--conf-paths",
        conf.name,
        "--suite",
        suite,
        "--max-eval-instances",
        str(max_instances),
        "--num-threads",
        "1",
    ]
    env = {**os.environ, "HELM_HTTP_MODEL_BASE_URL": url, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with open(log, "w") as out:
        done = subprocess.run(cmd, check=False, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise click.ClickException(f"helm-run exited {done.returncode}: see {log}")
    return cmd


def helm_scores(runs: Path) -> dict[str, dict]:
    """Per run spec: HELM's exact match (its main metric for these), the instances it scored, and the answers
    that were not one of the choice letters (the model generated something else)."""
    scores = {}
    for run in sorted(p for p in runs.iterdir() if (p / "run_spec.json").is_file()):
        stats_file = run / "stats.json"
        if not stats_file.is_file():
            scores[run.name] = {"failed": True}
            continue
        stats = {
            (s["name"]["name"], s["name"].get("split")): s
            for s in json.loads(stats_file.read_text())
            if "perturbation" not in s["name"]
        }
        exact = next(
            s for (name, split), s in stats.items() if name == "exact_match" and split in ("test", "valid")
        )
        states = json.loads((run / "scenario_state.json").read_text())["request_states"]
        letters = [rs["result"]["completions"][0]["text"].strip() for rs in states]
        scores[run.name] = {
            "exact_match": exact["mean"],
            "count": len(states),
            "not_a_letter": sum(a not in rs["output_mapping"] for a, rs in zip(letters, states, strict=True)),
            **{
                k: s["mean"]
                for (k, split), s in stats.items()
                if k.startswith("bbq_metric") and split == "test"
            },
        }
    return scores


def benchmark_of(run_name: str) -> str:
    return {"mmlu": "MMLU", "bbq": "BBQ", "truthful_qa": "TruthfulQA"}[run_name.split(":")[0]]


def column_scores(per_run: dict[str, dict]) -> dict[str, float | None]:
    """Table-8 columns: MMLU the mean of its subjects (as nextai-eval's column), the others their one run."""
    columns: dict[str, list[float]] = {}
    for name, s in per_run.items():
        columns.setdefault(benchmark_of(name), []).append(None if s.get("failed") else s["exact_match"])
    return {c: None if None in v else sum(v) / len(v) for c, v in columns.items()}


def lm_eval_rows(results: Path) -> dict[str, dict]:
    """nextai-eval's results.json: {"base": row, "adapter": row}, each with `scores` (columns) and `tasks`."""
    report = json.loads(results.read_text())
    return {"base": report["baseline"], "adapter": report}


def percent(value: float | None) -> str:
    return "failed" if value is None else f"{100 * value:.1f} %"


def report(
    when: str,
    items: Path,
    commands: list[str],
    placed: dict,
    helm: dict[str, dict],
    lm_eval: dict[str, dict],
    seconds: dict[str, float],
    base_model: str,
    adapter: str,
) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    versions = {p: metadata.version(p) for p in ("torch", "transformers", "lm_eval", "fastapi", "uvicorn")}
    absent = [c for c in BBQ_CATEGORIES if c not in placed["bbq_in_repository"]]
    unsampled = [c for c, n in placed["bbq"].items() if not n and c not in absent]
    lines = [
        f"# HELM {HELM_VERSION} against nextai-serve: the paper's benchmarks, base vs adapter ({when})",
        "",
        f"CPU: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[1]:.1f} over the last 5 minutes "
        "(times are wall-clock). "
        f"Python {platform.python_version()}; serving side: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; HELM: crfm-helm {HELM_VERSION} in its own "
        "environment (torch 2.13.0 CPU).",
        f"Base: `{base_model}`; adapter: `{adapter}` (`make demo`'s QLoRA run).",
        "",
        "## Table 8's shape, both harnesses, the same items",
        "",
        "| model | harness | MMLU (17 subjects) | TruthfulQA (mc_single) | BBQ | CNN/DM ROUGE-2 | CNN/DM "
        "stereotypes, representation |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("base", "adapter"):
        h, m = column_scores(helm[label]), lm_eval[label]["scores"]
        not_here = "not run: no copy of CNN/DailyMail could be obtained here"
        lines.append(
            f"| {label} | HELM (exact match) | {percent(h['MMLU'])} | {percent(h['TruthfulQA'])} | "
            f"{percent(h['BBQ'])} | {not_here} | {not_here} |"
        )
        lines.append(
            f"| {label} | lm-eval (nextai-eval, acc) | {percent(m['MMLU'])} | {percent(m['TruthfulQA'])} | "
            f"{percent(m['BBQ'])} | {not_here} | HELM only |"
        )
    lines += [
        "",
        f"Items: `{items.relative_to(ROOT) if items.is_relative_to(ROOT) else items}` ({placed['mmlu']} MMLU "
        f"over 17 subjects, {placed['truthfulqa']} TruthfulQA, {sum(placed['bbq'].values())} BBQ), the same "
        "items for both harnesses. Shots: HELM's MMLU takes its 5 from each subject's dev rows, as the "
        f"challenge's; TruthfulQA from the {placed['truthfulqa_shots']} row(s) placed before the scored "
        "ones (HELM takes them from the first 20 % of its CSV); BBQ has none (HELM draws BBQ's shots from "
        "the lines beyond its 1,000-line test split, and fewer lines than that are placed). BBQ pooled "
        + ", ".join(f"{c} ({n})" for c, n in placed["bbq"].items() if n)
        + f". HELM's `subject=all` reads 11 category files: {', '.join(absent)} are not in the repository"
        + (f" and {', '.join(unsampled)} have no item among these" if unsampled else "")
        + "; those were given to HELM as empty files, which hold no item (none is invented).",
        "",
        "## Per run spec (HELM) beside lm-eval's task",
        "",
        "| run | HELM base | HELM adapter | answers not a letter (base / adapter) | lm-eval base | "
        "lm-eval adapter |",
        "|---|---|---|---|---|---|",
    ]
    for name in helm["base"]:
        b, a = helm["base"][name], helm["adapter"].get(name, {"failed": True})
        task = lm_eval_task(name)
        lb, la = lm_eval["base"]["tasks"].get(task), lm_eval["adapter"]["tasks"].get(task)
        lines.append(
            f"| `{name}` | {cell(b)} | {cell(a)} | {b.get('not_a_letter', '-')} / "
            f"{a.get('not_a_letter', '-')} | {percent(lb)} | {percent(la)} |"
        )
    lines += ["", WHY_THEY_DIFFER]
    lines += ["", "## Commands and times", ""]
    lines += [f"- `{c}`" for c in commands]
    lines += [f"- {what}: {s / 60:.1f} min" for what, s in seconds.items()]
    return "\n".join(lines) + "\n"


def lm_eval_task(run_name: str) -> str:
    args = dict(part.split("=", 1) for part in run_name.split(":", 1)[1].split(","))
    return {
        "mmlu": f"nextai_mmlu_{args.get('subject')}",
        "bbq": "nextai_bbq",
        "truthful_qa": "nextai_truthfulqa_mc1",
    }[run_name.split(":")[0]]


def cell(score: dict) -> str:
    return "failed" if score.get("failed") else f"{percent(score['exact_match'])} of {score['count']:g}"


@click.command()
@click.option(
    "--helm-venv",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The environment crfm-helm is installed in (make eval-helm makes .helm-venv).",
)
@click.option("--base-model", required=True)
@click.option("--adapter", required=True)
@click.option(
    "--items",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=ITEMS / "helm-50",
    show_default=True,
)
@click.option("--max-eval-instances", default=50, show_default=True)
@click.option(
    "--mmlu-items",
    type=click.IntRange(min=1),
    default=None,
    help="Score only the first N items of each MMLU subject (a shorter run); default: all.",
)
@click.option("--port", default=8766, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("outputs/helm-eval"),
    show_default=True,
    help="HELM's benchmark_output, the servers' logs and nextai-eval's results.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "bench" / "results",
    show_default=True,
)
def main(helm_venv, base_model, adapter, items, max_eval_instances, mmlu_items, port, out, report_dir):
    """Score BASE_MODEL and BASE_MODEL + ADAPTER with HELM and with nextai-eval on the same items."""
    for path in (base_model, adapter):
        if not Path(path, "config.json").is_file() and not Path(path, "adapter_config.json").is_file():
            raise click.ClickException(f"{path}: no model or adapter there (run `make demo` first)")
    out.mkdir(parents=True, exist_ok=True)
    placed = place_items(items, ITEMS / "full", out / "benchmark_output" / "scenarios", mmlu_items)
    commands, seconds, helm = [], {}, {}
    for label, served_adapter in (("base", None), ("adapter", adapter)):
        start = time.monotonic()
        with served(base_model, served_adapter, port, out / f"serve-{label}.log") as url:
            cmd = helm_run(helm_venv, out, label, url, max_eval_instances, out / f"helm-run-{label}.log")
        seconds[f"HELM, {label}"] = time.monotonic() - start
        commands.append(f"HELM_HTTP_MODEL_BASE_URL={url} {shlex.join(cmd)}  # in {out}, {label} served")
        helm[label] = helm_scores(out / "benchmark_output" / "runs" / label)
    start = time.monotonic()
    lm_cmd = [
        sys.executable,
        "-m",
        "axolotl_nextai.eval.cli",
        "--base-model",
        base_model,
        "--adapter",
        adapter,
        "--compare-base",
        "--data-dir",
        str(items),
        "--limit",
        "none",
        *(["--limit", f"mmlu={mmlu_items}"] if mmlu_items else []),
        "--out",
        str(out / "lm-eval"),
    ]
    subprocess.run(lm_cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    seconds["nextai-eval (lm-eval), base and adapter"] = time.monotonic() - start
    commands.append(shlex.join(lm_cmd))
    when = datetime.date.today().isoformat()
    text = report(
        when,
        items,
        commands,
        placed,
        helm,
        lm_eval_rows(out / "lm-eval" / "results.json"),
        seconds,
        base_model,
        adapter,
    )
    path = report_dir / f"helm-{when}.md"
    path.write_text(text, encoding="utf-8")
    click.echo(text + f"\nreport: {path}")


if __name__ == "__main__":
    main()
