"""Run the paper's subset through lm-evaluation-harness and shape the scores like the paper's HELM table.

These are lm-eval numbers: its prompts, shot counts and metrics differ from HELM's, so they track a model
across our runs but are not comparable with the challenge's leaderboard or the paper's Table 8.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from statistics import mean

from axolotl_nextai.atomic import write_set
from axolotl_nextai.eval.tasks import BY_NAME, LOCAL_PREFIX, PAPER_TASKS, local_task_configs, task_yamls

COLUMNS = tuple(dict.fromkeys(task.column for task in PAPER_TASKS))
# Table 8 columns only HELM computes (CNN/DM bias metrics); shown as such, never filled in.
HELM_ONLY = ("CNN/DM stereotypes (race)", "CNN/DM stereotypes (gender)",
             "CNN/DM representation (race)", "CNN/DM representation (gender)")
SOURCE_NOTE = ("lm-evaluation-harness {version} scores (not HELM's: prompts, shots and metrics differ), "
               "limit {limit} per task")
TASK_FOLDER = "tasks"  # inside --out: the generated task YAMLs


def select_tasks(data_dir: Path | None, tasks: list[str], num_fewshot: int | None = None) -> tuple[list[str], list[dict]]:
    """What to run: the paper tasks with a file in `data_dir` (their configs returned, to write as YAMLs) plus
    `tasks`; with neither, the whole paper subset from the hub. Raises ValueError on a local setup that cannot
    run. Writes nothing."""
    if data_dir is None:
        return list(tasks) or [t.name for t in PAPER_TASKS], []
    configs = local_task_configs(data_dir)
    if not configs:
        expected = ", ".join(f"{t.name}.jsonl" for t in PAPER_TASKS[:2]) + ", ..."
        raise ValueError(f"--data-dir {data_dir}: no paper task file in it (expected e.g. {expected})")
    no_dev = [config["task"] for config in configs if config["fewshot_split"] is None]
    if num_fewshot and no_dev:
        raise ValueError(f"--num-fewshot {num_fewshot} needs a <task>.dev.jsonl for the shots; missing for {no_dev}")
    return [config["task"] for config in configs] + list(tasks), configs


def task_manager(include_paths: tuple[Path, ...]):
    """lm-eval's index of every task it ships plus those under `include_paths` (~10 s to build: built once, before
    the model loads, to check task names and then to run them)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=[str(p) for p in include_paths] or None)


def check_task_names(manager, names: list[str]) -> None:
    """ValueError naming each of `names` that `manager` does not know, with the nearest known name."""
    known = set(manager.all_tasks)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = [f"{name}" + (f" (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, known, n=1))
                              else "") for name in unknown]
        raise ValueError(f"--tasks: unknown lm-eval task {', '.join(hints)}")


def evaluate(model, tokenizer, tasks: list[str], manager, limit: int | None, num_fewshot: int | None = None) -> dict:
    """`lm_eval.simple_evaluate` on an already loaded model (base + adapter); returns its results dict."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

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


def write_report(out_dir: Path, label: str, results: dict, limit: int | None, configs: list[dict] = ()) -> str:
    """`results.md`, `results.json` and the local task YAMLs (`tasks/`) in `out_dir`, as one set: the row, its
    source note, and every metric lm-eval gave for every task run (tasks outside the paper subset appear only
    there). Task YAMLs of an earlier run that this one did not use are removed. Returns results.md's text."""
    import lm_eval

    row = table_row(results)
    note = SOURCE_NOTE.format(version=lm_eval.__version__, limit=limit)
    report = {"model": label, "source": note, **row, "lm_eval_results": results["results"]}
    markdown = to_markdown(label, row, note)
    yamls = task_yamls(list(configs), out_dir / TASK_FOLDER)
    stale = [p for p in (out_dir / TASK_FOLDER).glob(f"{LOCAL_PREFIX}*.yaml") if p not in yamls]
    write_set({out_dir / "results.json": json.dumps(report, indent=2, default=str), out_dir / "results.md": markdown,
               **yamls}, stale=stale)
    return markdown
