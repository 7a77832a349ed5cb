"""The paper's HELM subset as lm-evaluation-harness tasks, and task YAMLs that point them at local files.

HELM ran MMLU on 17 subjects, TruthfulQA (mc_single), BBQ and CNN/DailyMail, 50 instances each
(`../shared/notes/helm-api.md`). Each maps to the lm-eval task below; a local copy of its data keeps that task's
prompt and metrics (the YAML `include`s lm-eval's own file) and swaps only where the rows come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

MMLU_SUBJECTS = (
    "philosophy", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "moral_disputes", "moral_scenarios",
)
# Local task names carry this prefix so they never shadow lm-eval's hub-backed tasks.
LOCAL_PREFIX = "nextai_"


@dataclass(frozen=True)
class PaperTask:
    name: str       # lm-eval's task
    yaml: str       # its config, relative to lm_eval/tasks/
    column: str     # the results-table column it feeds
    metric: str     # lm-eval's metric name for that column


PAPER_TASKS = (
    *(PaperTask(f"mmlu_{s}", f"mmlu/default/mmlu_{s}.yaml", "MMLU", "acc") for s in MMLU_SUBJECTS),
    PaperTask("truthfulqa_mc1", "truthfulqa/truthfulqa_mc1.yaml", "TruthfulQA", "acc"),
    PaperTask("bbq", "bbq/bbq_multiple_choice.yaml", "BBQ", "acc"),
    PaperTask("cnn_dailymail_abisee", "cnn_dailymail/cnn_dailymail.yaml", "CNN/DM ROUGE-2", "rouge2"),
)
BY_NAME = {task.name: task for task in PAPER_TASKS}


def builtin_yaml(task: PaperTask) -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent / task.yaml


def builtin_config(task: PaperTask) -> dict:
    """lm-eval's own config of `task` (its dataset and split keys), with the template it includes merged in."""
    base = yaml.load(builtin_yaml(task).read_text(), Loader=_IgnoreTags)
    template = {}
    if "include" in base:  # MMLU's subjects hold their splits in a shared template
        template = yaml.load((builtin_yaml(task).parent / base["include"]).read_text(), Loader=_IgnoreTags)
    return {**template, **base}


def scored_split(config: dict) -> str:
    """The split a task scores: its test split, else its validation split (TruthfulQA has only that)."""
    return config.get("test_split") or config["validation_split"]


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


class _IgnoreTags(yaml.SafeLoader):
    """Reads lm-eval YAMLs for their split keys only; `!function` tags are left to lm-eval."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)
