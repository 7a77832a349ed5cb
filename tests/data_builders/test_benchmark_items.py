"""The paper's benchmarks from their original files (MMLU CSVs, BBQ JSONL, TruthfulQA's CSV) into lm-eval's
task files; and the real items vendored in data_builders/benchmark_items/ from them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from axolotl_launch import ROOT, read_jsonl, write_jsonl
from benchmark_files import bbq_row
from click.testing import CliRunner

from axolotl_nextai.eval.tasks import local_task_config
from data_builders.benchmark_releases import read_items, sample, write_items
from data_builders.benchmarks import BENCHMARKS, load_benchmarks
from data_builders.errors import DataError
from data_builders.nextai_data import main
from data_builders.paper_tasks import BY_NAME

ITEMS = ROOT / "data_builders" / "benchmark_items"
REAL = [name for name in BENCHMARKS if name != "cnn_dailymail_abisee"]  # no real CNN/DM copy here
MMLU_CSV = '"Which, of these, is a mammal?",Shark,Whale,Trout,Eel,B\nWhat is 2 + 2?,3,4,5,22,B\n'
TRUTHFULQA_CSV = (
    "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
    'Adversarial,Misconceptions,Do bulls hate red?,No,"No; They react to motion",'
    '"Yes; They see red as a threat",https://example.org\n'
)


def originals(tmp_path: Path) -> tuple[Path, Path, Path]:
    mmlu = tmp_path / "mmlu"
    for split in ("test", "dev"):
        (mmlu / split).mkdir(parents=True)
        (mmlu / split / f"philosophy_{split}.csv").write_text(MMLU_CSV)
    bbq = tmp_path / "bbq"
    write_jsonl(bbq / "Age.jsonl", [bbq_row(0), bbq_row(1)])
    truthfulqa = tmp_path / "TruthfulQA.csv"
    truthfulqa.write_text(TRUTHFULQA_CSV)
    return mmlu, bbq, truthfulqa


def test_originals_become_the_rows_lm_eval_reads(tmp_path):
    items = read_items(["mmlu_philosophy", "bbq", "truthfulqa_mc1"], *originals(tmp_path))
    assert items.rows["mmlu_philosophy"][0] == {
        "question": "Which, of these, is a mammal?",
        "subject": "philosophy",
        "choices": ["Shark", "Whale", "Trout", "Eel"],
        "answer": 1,
    }
    assert items.dev["mmlu_philosophy"][1]["answer"] == 1
    assert items.rows["bbq"] == [bbq_row(0), bbq_row(1)]
    assert items.rows["truthfulqa_mc1"] == [
        {
            "question": "Do bulls hate red?",
            "category": "Misconceptions",
            "mc1_targets": {"choices": ["No", "Yes", "They see red as a threat"], "labels": [1, 0, 0]},
        }
    ]
    assert [o["file"] for o in items.origins["mmlu_philosophy"]] == [
        "philosophy_test.csv",
        "philosophy_dev.csv",
    ]


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda mmlu, bbq, tq: (mmlu / "test" / "philosophy_test.csv").write_text("Q,a,b,c,d,E\n"),
            "philosophy_test.csv:1: expected question, A, B, C, D and an answer letter A-D",
        ),
        (
            lambda mmlu, bbq, tq: write_jsonl(bbq / "Age.jsonl", [{"context": "c"}]),
            "Age.jsonl:1: missing field 'question'",
        ),
        (
            lambda mmlu, bbq, tq: tq.write_text("Question,Best Answer,Incorrect Answers\nQ?,,x\n"),
            "TruthfulQA.csv:2: empty or missing column 'Best Answer'",
        ),
    ],
    ids=["mmlu-letter", "bbq-field", "truthfulqa-empty"],
)
def test_a_bad_original_names_its_file_and_line(tmp_path, edit, message):
    paths = originals(tmp_path)
    edit(*paths)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_items(["mmlu_philosophy", "bbq", "truthfulqa_mc1"], *paths)


def test_a_sample_is_seeded_and_its_prefixes_are_samples():
    rows = [{"i": i} for i in range(100)]
    assert sample(rows, 10, 0) == sample(rows, 10, 0) != sample(rows, 10, 1)
    assert sample(rows, 10, 0) != rows[:10] and sample(rows, None, 0) == sample(rows, 500, 0) == sample(
        rows, 100, 0
    )
    assert sorted(sample(rows, None, 0), key=lambda row: row["i"]) == rows


def test_written_items_run_in_lm_eval_and_decontamination(tmp_path):
    mmlu, _, truthfulqa = originals(tmp_path)
    items = read_items(["mmlu_philosophy", "truthfulqa_mc1"], mmlu, None, truthfulqa)
    manifest = write_items(items, tmp_path / "out", per_task=None, seed=0, compress=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.json",
        "mmlu_philosophy.dev.jsonl",
        "mmlu_philosophy.jsonl.gz",
        "truthfulqa_mc1.jsonl.gz",
    ]
    assert manifest["tasks"]["mmlu_philosophy"] == {
        "rows": 2,
        "of": 2,
        "dev_rows": 2,
        "origin": items.origins["mmlu_philosophy"],
    }
    assert sorted(map(json.dumps, rows_of(tmp_path / "out", "mmlu_philosophy"))) == sorted(
        map(json.dumps, items.rows["mmlu_philosophy"])
    )
    config = local_task_config(BY_NAME["mmlu_philosophy"], tmp_path / "out")
    assert config["dataset_kwargs"]["data_files"]["test"].endswith("mmlu_philosophy.jsonl.gz")
    texts = load_benchmarks(["mmlu_philosophy", "truthfulqa_mc1"], tmp_path / "out")
    assert texts.stats["mmlu_philosophy"]["items"] == 2 and texts.stats["truthfulqa_mc1"]["texts"] == 2


def test_cli_needs_an_original_and_says_which_file_is_missing(tmp_path):
    result = CliRunner().invoke(main, ["benchmark-items", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "give at least one of --mmlu-dir" in result.output
    result = CliRunner().invoke(
        main, ["benchmark-items", "--mmlu-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert (
        result.exit_code == 1
        and "missing benchmark file:" in result.output
        and "philosophy_test.csv" in result.output
    )
    assert not (tmp_path / "o").exists()


def rows_of(folder: Path, task: str) -> list[dict]:
    path = folder / f"{task}.jsonl"
    if path.is_file():
        return read_jsonl(path)
    return [
        json.loads(line) for line in gzip.decompress((folder / f"{task}.jsonl.gz").read_bytes()).splitlines()
    ]


def test_vendored_items_are_the_papers_subset_whole_and_for_the_demo():
    """helm-50: 50 items per task as HELM ran; full: every item; demo: prefixes of helm-50's (sampled
    order)."""
    for name in REAL:
        full, helm, demo = (rows_of(ITEMS / folder, name) for folder in ("full", "helm-50", "demo"))
        assert len(helm) == 50 and all(row in full for row in helm[:5]), name
        assert demo == helm[: {"bbq": 6, "truthfulqa_mc1": 5}.get(name, 3)], name
    manifest = json.loads((ITEMS / "full" / "manifest.json").read_text())
    assert sum(t["rows"] for n, t in manifest["tasks"].items() if n.startswith("mmlu_")) == 4_981
    assert manifest["tasks"]["bbq"]["rows"] == 11_956 and manifest["tasks"]["truthfulqa_mc1"]["rows"] == 817
    for folder in ("full", "helm-50", "demo"):
        texts = load_benchmarks(REAL, ITEMS / folder)
        assert set(texts.stats) == set(REAL)
