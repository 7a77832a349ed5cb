"""The paper's HELM subset as lm-evaluation-harness tasks: what the eval runner scores and the decontamination
step compares training rows against.

HELM ran MMLU on 17 subjects, TruthfulQA (`truthful_qa:task=mc_single`), BBQ (`bbq:subject=all`) and
CNN/DailyMail (`summarization_cnndm`), 50 instances each (`--max-eval-instances 50`, docs/eval.md). Each maps
to the lm-eval task below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from data_builders.extras import require_extra

MMLU_SUBJECTS = (
    "philosophy",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "moral_disputes",
    "moral_scenarios",
)


@dataclass(frozen=True)
class PaperTask:
    name: str  # lm-eval's task
    yaml: str  # its config, relative to lm_eval/tasks/
    column: str  # the results-table column it feeds
    metric: str  # lm-eval's metric name for that column


PAPER_TASKS = (
    *(PaperTask(f"mmlu_{s}", f"mmlu/default/mmlu_{s}.yaml", "MMLU", "acc") for s in MMLU_SUBJECTS),
    PaperTask("truthfulqa_mc1", "truthfulqa/truthfulqa_mc1.yaml", "TruthfulQA", "acc"),
    PaperTask("bbq", "bbq/bbq_multiple_choice.yaml", "BBQ", "acc"),
    PaperTask("cnn_dailymail_abisee", "cnn_dailymail/cnn_dailymail.yaml", "CNN/DM ROUGE-2", "rouge2"),
)
BY_NAME = {task.name: task for task in PAPER_TASKS}


def builtin_yaml(task: PaperTask) -> Path:
    require_extra(f"the hub copy of {task.name} (lm-eval's task config names it)", "eval", "lm_eval")
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent / task.yaml


def builtin_config(task: PaperTask) -> dict:
    """lm-eval's own config of `task` (its dataset and split keys), with the template it includes merged
    in."""
    base = yaml.load(builtin_yaml(task).read_text(), Loader=_IgnoreTags)
    template = {}
    if "include" in base:  # MMLU's subjects hold their splits in a shared template
        template = yaml.load((builtin_yaml(task).parent / base["include"]).read_text(), Loader=_IgnoreTags)
    return {**template, **base}


def scored_split(config: dict) -> str:
    """The split a task scores: its test split, else its validation split (TruthfulQA has only that)."""
    return config.get("test_split") or config["validation_split"]


class _IgnoreTags(yaml.SafeLoader):
    """Reads lm-eval YAMLs for their split keys only; `!function` tags are left to lm-eval."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)
