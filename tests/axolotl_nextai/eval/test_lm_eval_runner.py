"""nextai-eval: the paper's subset on local task files through the real lm-evaluation-harness, tiny model."""

from __future__ import annotations

import json

import pytest
from axolotl_launch import write_jsonl
from click.testing import CliRunner

from axolotl_nextai.eval.cli import main
from axolotl_nextai.eval.stats import COLUMNS, table_row
from axolotl_nextai.eval.tasks import LOCAL_PREFIX, local_task_config
from data_builders.paper_tasks import BY_NAME, MMLU_SUBJECTS, PAPER_TASKS, builtin_yaml


def test_paper_subset_is_17_mmlu_subjects_and_three_benchmarks_all_in_lm_eval():
    assert len(MMLU_SUBJECTS) == len(set(MMLU_SUBJECTS)) == 17
    assert len(PAPER_TASKS) == 20
    missing = [task.name for task in PAPER_TASKS if not builtin_yaml(task).is_file()]
    assert not missing, f"lm-eval no longer ships {missing}"


def test_local_config_points_the_scored_split_at_the_file(paper_task_files):
    mmlu = local_task_config(BY_NAME["mmlu_philosophy"], paper_task_files)
    assert mmlu["task"] == LOCAL_PREFIX + "mmlu_philosophy" and mmlu["dataset_path"] == "json"
    assert mmlu["dataset_kwargs"]["data_files"] == {"test": str(paper_task_files / "mmlu_philosophy.jsonl")}
    assert mmlu["fewshot_split"] is None  # no dev file: no few-shot pool
    truthful = local_task_config(BY_NAME["truthfulqa_mc1"], paper_task_files)
    assert list(truthful["dataset_kwargs"]["data_files"]) == ["validation"]
    assert local_task_config(BY_NAME["mmlu_moral_scenarios"], paper_task_files) is None

    (paper_task_files / "mmlu_philosophy.dev.jsonl").write_text(
        (paper_task_files / "mmlu_philosophy.jsonl").read_text()
    )
    with_dev = local_task_config(BY_NAME["mmlu_philosophy"], paper_task_files)
    assert (
        set(with_dev["dataset_kwargs"]["data_files"]) == {"test", "dev"}
        and with_dev["fewshot_split"] == "dev"
    )


def test_table_row_averages_mmlu_subjects_and_ignores_other_tasks():
    results = {
        "results": {
            f"{LOCAL_PREFIX}mmlu_philosophy": {"acc,none": 0.5},
            "mmlu_moral_disputes": {"acc,none": 0.25},
            "truthfulqa_mc1": {"acc,none": 0.75},
            "arc_easy": {"acc,none": 1.0},
        },
        "n-samples": {
            name: {"original": 9, "effective": 4}
            for name in (
                f"{LOCAL_PREFIX}mmlu_philosophy",
                "mmlu_moral_disputes",
                "truthfulqa_mc1",
                "arc_easy",
            )
        },
    }
    row = table_row(results)
    assert row["scores"] == {"MMLU": 0.375, "TruthfulQA": 0.75, "BBQ": None, "CNN/DM ROUGE-2": None}
    assert row["n_tasks"]["MMLU"] == 2 and "arc_easy" not in row["tasks"]


CUSTOM_TASK = """\
task: tiny_custom_mc
dataset_path: json
dataset_kwargs:
  data_files: {{test: {rows}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}} Answer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""


def test_cli_writes_a_table_from_local_task_files(tiny_model, paper_task_files, tmp_path):
    custom = tmp_path / "custom"
    custom.mkdir()
    rows = write_jsonl(
        custom / "rows.jsonl", [{"question": "Up or down?", "choices": ["up", "down"], "answer": 0}]
    )
    (custom / "tiny_custom_mc.yaml").write_text(CUSTOM_TASK.format(rows=rows))
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main,
        [
            "--base-model",
            str(tiny_model),
            "--data-dir",
            str(paper_task_files),
            "--limit",
            "3",
            "--out",
            str(out),
            "--label",
            "tiny base",
            "--tasks",
            "tiny_custom_mc",
            "--include-path",
            str(custom),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads((out / "results.json").read_text())
    assert report["model"] == "tiny base" and "not HELM's" in report["source"]
    assert report["n_tasks"] == {"MMLU": 2, "TruthfulQA": 1, "BBQ": 1, "CNN/DM ROUGE-2": 1}
    # --limit caps each task: 4 MMLU rows -> 3, 3 TruthfulQA rows -> 3, 2 BBQ rows -> 2.
    assert report["n_samples"][f"{LOCAL_PREFIX}mmlu_philosophy"] == 3
    assert report["n_samples"][f"{LOCAL_PREFIX}bbq"] == 2
    for column in COLUMNS:
        assert 0.0 <= report["scores"][column] <= 1.0
    mmlu = [v for k, v in report["tasks"].items() if "mmlu" in k]
    assert report["scores"]["MMLU"] == pytest.approx(sum(mmlu) / 2)
    assert all(v * 3 == pytest.approx(round(v * 3)) for v in mmlu)  # accuracies over 3 items
    # custom: scored, not in the row
    assert report["lm_eval_results"]["tiny_custom_mc"]["acc,none"] in (0.0, 1.0)
    assert "tiny_custom_mc" not in report["tasks"]
    table = (out / "results.md").read_text()
    assert table.startswith("| Model | MMLU | TruthfulQA | BBQ | CNN/DM ROUGE-2 |")
    assert "| tiny base |" in table and "not HELM's" in table
    assert sorted(p.name for p in (out / "tasks").iterdir()) == sorted(
        f"{LOCAL_PREFIX}{name}.yaml"
        for name in (
            "mmlu_philosophy",
            "mmlu_high_school_biology",
            "truthfulqa_mc1",
            "bbq",
            "cnn_dailymail_abisee",
        )
    )


def test_cli_refuses_local_setups_that_cannot_run(tmp_path, tiny_model, paper_task_files):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        main, ["--base-model", str(tiny_model), "--data-dir", str(tmp_path / "empty")]
    )
    assert (
        result.exit_code == 2
        and "no paper task file" in result.output
        and "mmlu_philosophy.jsonl" in result.output
    )
    # Shots with no dev file would be drawn from the scored rows.
    result = CliRunner().invoke(
        main,
        [
            "--base-model",
            str(tiny_model),
            "--data-dir",
            str(paper_task_files),
            "--num-fewshot",
            "5",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2 and "needs a <task>.dev.jsonl" in result.output


def test_a_value_error_inside_lm_eval_is_a_bug_not_a_usage_error(
    tiny_model, paper_task_files, tmp_path, monkeypatch
):
    import lm_eval

    def broken(**kwargs):
        raise ValueError("inside lm-eval")

    monkeypatch.setattr(lm_eval, "simple_evaluate", broken)
    args = [
        "--base-model",
        str(tiny_model),
        "--data-dir",
        str(paper_task_files),
        "--limit",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "unexpected ValueError: inside lm-eval" in result.output
    assert "NEXTAI_DEBUG=1" in result.output and "Usage:" not in result.output
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("NEXTAI_DEBUG", "1")
    assert isinstance(CliRunner().invoke(main, args).exception, ValueError)  # the traceback, for the report
