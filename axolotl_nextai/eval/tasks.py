"""What nextai-eval runs: which lm-eval tasks, how many items each (`--limit`), and the task YAMLs that point
the paper's tasks (data_builders/paper_tasks.py) at local files.

A local copy of a task's data keeps that task's prompt and metrics (the YAML `include`s lm-eval's own file)
and swaps only where the rows come from.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from axolotl_nextai.eval.errors import EvalInputError
from data_builders.benchmarks import BY_COLUMN
from data_builders.errors import DataError, RowError
from data_builders.files import MISSING, file_problem
from data_builders.paper_tasks import (
    BY_NAME,
    PAPER_TASKS,
    PaperTask,
    builtin_config,
    builtin_yaml,
    scored_split,
)
from data_builders.sources.base import checked_rows, read_file

# Local task names carry this prefix so they never shadow lm-eval's hub-backed tasks.
LOCAL_PREFIX = "nextai_"
# What lm-eval's task for each results column reads from a row (its YAML and utils.py), checked on every row
# of a local file before the model loads; decontamination's texts (data_builders/benchmarks.py) are checked
# too.
EVAL_COLUMNS = {
    "MMLU": {"question": str, "choices": list, "answer": int},
    "TruthfulQA": {"question": str, "mc1_targets": dict},
    "BBQ": {
        "context": str,
        "question": str,
        "ans0": str,
        "ans1": str,
        "ans2": str,
        "label": int,
        "context_condition": str,
        "category": str,
        "question_polarity": str,
        "answer_info": dict,
        "additional_metadata": dict,
    },
    "CNN/DM ROUGE-2": {"article": str, "highlights": str},
}
# `--limit mmlu=5`: the column each short name limits
LIMIT_KEYS = {"mmlu": "MMLU", "truthfulqa": "TruthfulQA", "bbq": "BBQ", "cnndm": "CNN/DM ROUGE-2"}
ALL = "*"


def parse_limits(values: list[str] | tuple[str, ...]) -> dict[str, int | None]:
    """`["50"]`, `["mmlu=5", "bbq=20"]`: items per task, for every task (`*`) or one column's. `none` lifts
    the limit. An EvalInputError names the bad value and the known names."""
    limits: dict[str, int | None] = {}
    for value in values:
        key, sep, number = value.rpartition("=")
        column = LIMIT_KEYS.get(key.lower()) if sep else ALL
        if column is None:
            raise EvalInputError(
                f"--limit {value}: unknown benchmark {key!r} (known: {', '.join(LIMIT_KEYS)})"
            )
        if number.lower() == "none":
            limits[column] = None
            continue
        if not number.isdigit() or int(number) < 1:
            raise EvalInputError(f"--limit {value}: expected a positive whole number of items or none")
        limits[column] = int(number)
    return limits


def task_limit(task: str, limits: dict[str, int | None]) -> int | None:
    paper = BY_NAME.get(task.removeprefix(LOCAL_PREFIX))
    if paper is not None and paper.column in limits:
        return limits[paper.column]
    return limits.get(ALL)


def describe_limits(limits: dict[str, int | None]) -> str:
    """`{"*": 50, "BBQ": None}` -> "at most 50 items per task; BBQ: every item"."""

    def items(n: int | None) -> str:
        return "every item" if n is None else f"at most {n} items per task"

    parts = [items(limits[ALL])] if ALL in limits else []
    parts += [f"{key}: {items(n)}" for key, n in limits.items() if key != ALL]
    return "; ".join(parts) or items(None)


def local_task_config(task: PaperTask, data_dir: Path) -> dict | None:
    """The YAML (as a dict) that runs `task` on `data_dir/<task>.jsonl` (or `.jsonl.gz`), or None when neither
    file is there.

    The file feeds the split the task scores (its test split, else validation); `<task>.dev.jsonl`, when
    present, feeds the few-shot split (without it lm-eval would take shots from the scored rows, so
    `select_tasks` refuses `--num-fewshot`).
    """
    candidates = (
        data_dir / f"{task.name}.jsonl",
        data_dir / f"{task.name}.jsonl.gz",
        data_dir / f"{task.name}.dev.jsonl",
    )
    for path in candidates:  # a FIFO or a loop where a task file goes is said, not skipped as absent
        problem = file_problem(path)
        if problem not in (None, MISSING):
            raise DataError(f"{path}: {problem}")
    rows = next((path for path in candidates[:2] if path.is_file()), None)
    if rows is None:
        return None
    split_keys = builtin_config(task)
    data_files = {scored_split(split_keys): str(rows.resolve())}
    config = {
        "include": str(builtin_yaml(task)),
        "task": LOCAL_PREFIX + task.name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": data_files},
    }
    dev = data_dir / f"{task.name}.dev.jsonl"
    if dev.is_file():
        split = split_keys.get("fewshot_split") or "dev"
        data_files[split] = str(dev.resolve())
        config["fewshot_split"] = split
    else:  # the local data has no such split; lm-eval must not look for one
        config["fewshot_split"] = None
    if task.metric == "rouge2":  # HELM reports ROUGE-2 only; BERTScore would download a model
        config["metric_list"] = [
            {"metric": m, "aggregation": "mean", "higher_is_better": True}
            for m in ("rouge1", "rouge2", "rougeL")
        ]
    return config


def local_task_configs(data_dir: Path) -> list[dict]:
    """The config of each paper task with a local file (`local_task_config`'s dicts: `task` is the local name,
    `fewshot_split` None without a dev file), in paper order."""
    return [config for task in PAPER_TASKS if (config := local_task_config(task, data_dir)) is not None]


def select_tasks(
    data_dir: Path | None, tasks: list[str], num_fewshot: int | None = None
) -> tuple[list[str], list[dict]]:
    """What to run: the paper tasks with a file in `data_dir` (their configs returned, to write as YAMLs) plus
    `tasks`; with neither, the whole paper subset from the hub. Raises EvalInputError on a local setup that
    cannot run. Writes nothing."""
    if data_dir is None:
        return list(tasks) or [t.name for t in PAPER_TASKS], []
    try:
        configs = local_task_configs(data_dir)
    except DataError as err:
        raise EvalInputError(f"--data-dir: {err}") from None
    if not configs:
        expected = ", ".join(f"{t.name}.jsonl" for t in PAPER_TASKS[:2]) + ", ..."
        raise EvalInputError(f"--data-dir {data_dir}: no paper task file in it (expected e.g. {expected})")
    no_dev = [config["task"] for config in configs if config["fewshot_split"] is None]
    if num_fewshot and no_dev:
        raise EvalInputError(
            f"--num-fewshot {num_fewshot} needs a <task>.dev.jsonl for the shots; missing for {no_dev}"
        )
    return [config["task"] for config in configs] + list(tasks), configs


def check_local_files(configs: list[dict]) -> None:
    """Every row of every local task file (scored and few-shot) has what lm-eval's task and decontamination
    read: an EvalInputError naming --data-dir, file:line and the field otherwise, before any model loads."""
    try:
        for config in configs:
            column = BY_NAME[config["task"].removeprefix(LOCAL_PREFIX)].column
            for path in config["dataset_kwargs"]["data_files"].values():
                rows, _ = read_file(Path(path))
                count = 0
                for where, row in checked_rows(rows, EVAL_COLUMNS[column]):
                    try:
                        BY_COLUMN[column].texts(row)
                    except ValueError as err:  # texts' contract for a bad row (data_builders/benchmarks.py)
                        raise RowError(f"{where}: {err}") from None
                    count += 1
                if not count:
                    raise DataError(f"{path}: no items")
    except DataError as err:  # the readers' one-line errors, and the two above
        raise EvalInputError(f"--data-dir: {err}") from None


def task_yamls(configs: list[dict], folder: Path) -> dict[Path, str]:
    """`folder/<task>.yaml` -> its text, for each config: what lm-eval's `include_path` reads."""
    return {folder / f"{config['task']}.yaml": yaml.safe_dump(config, sort_keys=False) for config in configs}
