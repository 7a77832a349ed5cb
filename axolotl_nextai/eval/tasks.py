"""Task YAMLs that point the paper's lm-eval tasks (data_builders/paper_tasks.py) at local files.

A local copy of a task's data keeps that task's prompt and metrics (the YAML `include`s lm-eval's own file) and
swaps only where the rows come from.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from data_builders.paper_tasks import PAPER_TASKS, PaperTask, builtin_config, builtin_yaml, scored_split

# Local task names carry this prefix so they never shadow lm-eval's hub-backed tasks.
LOCAL_PREFIX = "nextai_"


def local_task_config(task: PaperTask, data_dir: Path) -> dict | None:
    """The YAML (as a dict) that runs `task` on `data_dir/<task>.jsonl` (or `.jsonl.gz`), or None when neither
    file is there.

    The file feeds the split the task scores (its test split, else validation); `<task>.dev.jsonl`, when
    present, feeds the few-shot split (without it lm-eval would take shots from the scored rows, so
    `runner.select_tasks` refuses `--num-fewshot`).
    """
    rows = next((path for path in (data_dir / f"{task.name}.jsonl", data_dir / f"{task.name}.jsonl.gz")
                 if path.is_file()), None)
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
        config["metric_list"] = [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                 for m in ("rouge1", "rouge2", "rougeL")]
    return config


def local_task_configs(data_dir: Path) -> list[dict]:
    """The config of each paper task with a local file (`local_task_config`'s dicts: `task` is the local name,
    `fewshot_split` None without a dev file), in paper order."""
    return [config for task in PAPER_TASKS if (config := local_task_config(task, data_dir)) is not None]


def task_yamls(configs: list[dict], folder: Path) -> dict[Path, str]:
    """`folder/<task>.yaml` -> its text, for each config: what lm-eval's `include_path` reads."""
    return {folder / f"{config['task']}.yaml": yaml.safe_dump(config, sort_keys=False) for config in configs}
