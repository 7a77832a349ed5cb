"""Run the paper's subset through lm-evaluation-harness and shape the scores like the paper's HELM table.

These are lm-eval numbers: its prompts, shot counts and metrics differ from HELM's, so they track a model
across our runs but are not comparable with the challenge's leaderboard or the paper's Table 8.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from axolotl_nextai.atomic import atomic_write
from axolotl_nextai.eval.tasks import BY_NAME, LOCAL_PREFIX, PAPER_TASKS, write_local_tasks

COLUMNS = tuple(dict.fromkeys(task.column for task in PAPER_TASKS))
# Table 8 columns only HELM computes (CNN/DM bias metrics); shown as such, never filled in.
HELM_ONLY = ("CNN/DM stereotypes (race)", "CNN/DM stereotypes (gender)",
             "CNN/DM representation (race)", "CNN/DM representation (gender)")
SOURCE_NOTE = ("lm-evaluation-harness {version} scores (not HELM's: prompts, shots and metrics differ), "
               "limit {limit} per task")


def select_tasks(data_dir: Path | None, tasks: list[str], include_paths: list[Path], task_dir: Path,
                 num_fewshot: int | None = None) -> tuple[list[str], list[Path]]:
    """What to run: the paper tasks with a file in `data_dir` (their YAMLs written to `task_dir`) plus `tasks`;
    with neither, the whole paper subset from the hub. Raises ValueError on a local setup that cannot run."""
    if data_dir is None:
        return list(tasks) or [t.name for t in PAPER_TASKS], list(include_paths)
    configs = write_local_tasks(data_dir, task_dir)
    if not configs:
        expected = ", ".join(f"{t.name}.jsonl" for t in PAPER_TASKS[:2]) + ", ..."
        raise ValueError(f"no paper task file in {data_dir} (expected e.g. {expected})")
    local = [config["task"] for config in configs]
    no_dev = [config["task"] for config in configs if config["fewshot_split"] is None]
    if num_fewshot and no_dev:
        raise ValueError(f"--num-fewshot {num_fewshot} needs a <task>.dev.jsonl for the shots; missing for {no_dev}")
    return local + list(tasks), [task_dir, *include_paths]


def evaluate(model, tokenizer, tasks: list[str], include_paths: list[Path], limit: int | None,
             num_fewshot: int | None = None) -> dict:
    """`lm_eval.simple_evaluate` on an already loaded model (base + adapter); returns its results dict."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(p) for p in include_paths] or None)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, num_fewshot=num_fewshot,
                                   task_manager=manager, log_samples=False, bootstrap_iters=0)


def table_row(results: dict) -> dict:
    """Per-column score and task count, per-task score and items scored. MMLU is the mean over the subjects
    that ran, as HELM's MMLU column averages its 17 subjects."""
    per_column: dict[str, list[float]] = {column: [] for column in COLUMNS}
    tasks: dict[str, float] = {}
    for name, scores in results["results"].items():
        task = BY_NAME.get(name.removeprefix(LOCAL_PREFIX))
        if task is None:
            continue
        value = scores[f"{task.metric},none"]
        tasks[name] = value
        per_column[task.column].append(value)
    return {
        "scores": {column: mean(values) if values else None for column, values in per_column.items()},
        "n_tasks": {column: len(values) for column, values in per_column.items()},
        "tasks": tasks,
        "n_samples": {name: results["n-samples"][name]["effective"] for name in tasks},
    }


def to_markdown(label: str, row: dict, note: str) -> str:
    """One Table-8-shaped Markdown table: a column per benchmark, "—" where nothing ran, HELM-only marked."""
    header = ["Model", *COLUMNS, *HELM_ONLY]
    cells = [label]
    for column in COLUMNS:
        score, n = row["scores"][column], row["n_tasks"][column]
        cells.append("—" if score is None else f"{score:.3f}" + (f" ({n} subj.)" if column == "MMLU" else ""))
    cells += ["HELM only"] * len(HELM_ONLY)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(cells) + " |"]
    return "\n".join(lines) + f"\n\n{note}.\n"


def write_report(out_dir: Path, label: str, results: dict, limit: int | None) -> str:
    """`results.md` and `results.json` in `out_dir`: the row, its source note, and every metric lm-eval gave
    for every task run (tasks outside the paper subset appear only there). Returns results.md's text."""
    import lm_eval

    row = table_row(results)
    note = SOURCE_NOTE.format(version=lm_eval.__version__, limit=limit)
    report = {"model": label, "source": note, **row, "lm_eval_results": results["results"]}
    with atomic_write(out_dir / "results.json") as f:
        json.dump(report, f, indent=2, default=str)
    markdown = to_markdown(label, row, note)
    with atomic_write(out_dir / "results.md") as f:
        f.write(markdown)
    return markdown
