"""Decontamination against the paper's benchmarks, on real MiniLM and local benchmark files in their hub
schemas: planted copies of test items go and are reported, unrelated rows stay, no kept row reaches the
threshold (rechecked without our code), the command's files and errors, and the build option."""

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from axolotl_launch import read_jsonl, write_jsonl
from benchmark_files import ARTICLE, BBQ_CONTEXT, BBQ_QUESTION, MMLU, TRUTHFULQA
from click.testing import CliRunner

from data_builders.benchmarks import BenchmarkTexts
from data_builders.decontaminate import TrainingRow, decontaminate, decontaminate_file
from data_builders.dedup.embed import DEFAULT_MODEL, resolve_model
from data_builders.nextai_data import main

UNRELATED = [
    {"instruction": "Write a haiku about autumn leaves.", "input": "", "source": "dolly"},
    {"instruction": "Explain how mitochondria produce energy.", "input": "", "source": "dolly"},
    {
        "instruction": "What is the probability of rolling two sixes with two dice?",
        "input": "",
        "source": "open_platypus",
    },
    {
        "instruction": "Summarize the following article.",
        "input": "The school board met on Tuesday and approved a new budget for next year.",
        "source": "multi_news",
    },
]
PLANTED = {  # a reworded test item inside a training row -> the benchmark it comes from
    "open_platypus:1": (
        "mmlu_high_school_biology",
        {
            "instruction": "Answer the following multiple-choice question.",
            "input": "In eukaryotic cells, which of these is the main place where ATP is synthesized?\n"
            "A) nucleus B) mitochondria C) Golgi apparatus D) ribosome",
            "source": "open_platypus",
        },
    ),
    "dolly:3": (
        "truthfulqa_mc1",
        {"instruction": "What happens when you crack your knuckles often?", "input": "", "source": "dolly"},
    ),
    "multi_news:5": (
        "cnn_dailymail_abisee",
        {
            "instruction": "Write a one-sentence summary of this article.",
            "input": ARTICLE.replace("12 million", "twelve million"),
            "source": "multi_news",
        },
    ),
}


def training_rows() -> list[dict]:
    rows = [
        {**UNRELATED[0], "id": "dolly:0"},
        {**PLANTED["open_platypus:1"][1], "id": "open_platypus:1"},
        {**UNRELATED[1], "id": "dolly:2"},
        {**PLANTED["dolly:3"][1], "id": "dolly:3"},
        {**UNRELATED[2], "id": "open_platypus:4"},
        {**PLANTED["multi_news:5"][1], "id": "multi_news:5"},
        {**UNRELATED[3], "id": "multi_news:6"},
    ]
    return [{**r, "output": f"answer {i}"} for i, r in enumerate(rows)]


def benchmark_strings() -> list[str]:
    """The test items written our own way (not through data_builders.benchmarks): questions, with choices."""
    items = [(q, c) for q, c in MMLU.values()] + TRUTHFULQA
    return (
        [q for q, _ in items]
        + [" ".join([q, *c]) for q, c in items]
        + [BBQ_CONTEXT + " " + BBQ_QUESTION, ARTICLE]
    )


def text(row: dict) -> str:
    return row["instruction"] + ("\n" + row["input"] if row["input"] else "")


@pytest.fixture(scope="module")
def minilm():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("train") / "v5.jsonl", training_rows())


@pytest.fixture(scope="module")
def result(train_file, benchmarks_dir):
    from data_builders.benchmarks import BENCHMARKS

    return decontaminate_file(train_file, list(BENCHMARKS), benchmarks_dir)


def test_planted_copies_are_removed_and_reported_with_benchmark_and_score(result, minilm):
    from sentence_transformers import util

    assert {p["training_id"]: p["benchmark"] for p in result.pairs} == {k: b for k, (b, _) in PLANTED.items()}
    for pair in result.pairs:
        assert pair["benchmark_id"] == f"{pair['benchmark']}:0" and pair["score"] >= 0.8
        vectors = minilm.encode([pair["training_text"], pair["benchmark_text"]])
        assert pair["score"] == pytest.approx(float(util.cos_sim(vectors[0], vectors[1])), abs=1e-3)
    assert result.pairs[0]["training_text"] == text(PLANTED["open_platypus:1"][1])


def test_unrelated_rows_stay_unchanged_and_in_order(result):
    assert result.rows == [r for r in training_rows() if r["id"] not in PLANTED]


def test_no_kept_row_reaches_the_threshold_rechecked_with_minilm(result, minilm):
    from sentence_transformers import util

    sims = util.cos_sim(
        minilm.encode([text(r) for r in result.rows]), minilm.encode(benchmark_strings())
    ).numpy()
    assert sims.max() < 0.8


def test_manifest_counts_per_benchmark_and_source(result, train_file):
    summary = result.manifest["decontamination"]
    assert summary["removed"] == 3 and summary["threshold"] == 0.8
    assert summary["removed_per_source"] == {"dolly": 1, "multi_news": 1, "open_platypus": 1}
    assert {n: s["removed"] for n, s in summary["benchmarks"].items() if s["removed"]} == {
        "mmlu_high_school_biology": 1,
        "truthfulqa_mc1": 1,
        "cnn_dailymail_abisee": 1,
    }
    assert summary["benchmarks"]["bbq"] == {
        "origin": summary["benchmarks"]["bbq"]["origin"],
        "items": 2,
        "texts": 2,
        "removed": 0,
    }
    assert result.manifest["input"]["rows"] == 7 and result.manifest["input"]["file"] == train_file.name


def test_threshold_is_inclusive_and_respected():
    # cos = 0.8 exactly, in float32, between a training row and a benchmark text; another row at 0.6.
    rows = [TrainingRow("a", "a", "s"), TrainingRow("b", "b", "s")]
    train = np.array([[0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    bench = BenchmarkTexts(
        ["q"],
        ["mmlu_philosophy"],
        ["mmlu_philosophy:0"],
        {"mmlu_philosophy": {"origin": {}, "items": 1, "texts": 1}},
    )
    bench_vectors = np.array([[1.0, 0.0]], dtype=np.float32)
    assert decontaminate(rows, train, bench, bench_vectors, 0.8).keep.tolist() == [False, True]
    assert decontaminate(rows, train, bench, bench_vectors, 0.6).keep.tolist() == [False, False]
    assert decontaminate(rows, train, bench, bench_vectors, 0.81).keep.tolist() == [True, True]


# --- the command ------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, ["decontaminate", *map(str, args)])


OUT_FILES = ("clean.jsonl", "clean.contamination.jsonl", "clean.manifest.json")


def test_command_writes_rows_pairs_and_manifest_byte_identically(train_file, benchmarks_dir, tmp_path):
    first, second = tmp_path / "a" / "clean.jsonl", tmp_path / "b" / "clean.jsonl"
    for out in (first, second):
        got = run(train_file, "--benchmarks-dir", benchmarks_dir, "--out", out)
        assert got.exit_code == 0, got.output
    assert "v5.jsonl: 7 rows -> 4 (3 at cosine >= 0.8 to a benchmark item)" in got.output
    for name in OUT_FILES:
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes(), name
    assert [r["id"] for r in read_jsonl(first)] == ["dolly:0", "dolly:2", "open_platypus:4", "multi_news:6"]
    pairs = read_jsonl(first.with_name("clean.contamination.jsonl"))
    assert [p["training_id"] for p in pairs] == list(PLANTED)
    manifest = json.loads(first.with_name("clean.manifest.json").read_text())
    assert manifest["output"]["rows"] == 4 and manifest["decontamination"]["removed"] == 3
    assert (manifest["options"]["encoder"], manifest["options"]["device"]) == ("openvino", "cpu")


def test_the_encoder_option_is_builds_and_either_encoder_removes_the_same_rows(
    train_file, benchmarks_dir, tmp_path
):
    out = tmp_path / "torch" / "clean.jsonl"
    got = run(train_file, "--benchmarks-dir", benchmarks_dir, "--encoder", "torch", "--out", out)
    assert got.exit_code == 0, got.output
    assert [r["id"] for r in read_jsonl(out)] == ["dolly:0", "dolly:2", "open_platypus:4", "multi_news:6"]
    assert json.loads(out.with_name("clean.manifest.json").read_text())["options"]["encoder"] == "torch"
    got = run(
        train_file,
        "--benchmarks-dir",
        benchmarks_dir,
        "--encoder",
        "openvino",
        "--device",
        "cuda",
        "--out",
        tmp_path / "x.jsonl",
    )
    assert got.exit_code != 0 and not (tmp_path / "x.jsonl").exists()


def test_a_higher_threshold_keeps_the_weaker_matches(train_file, benchmarks_dir, tmp_path, result):
    scores = sorted(p["score"] for p in result.pairs)
    out = tmp_path / "strict.jsonl"
    got = run(
        train_file,
        "--benchmarks-dir",
        benchmarks_dir,
        "--threshold",
        (scores[0] + scores[1]) / 2,
        "--out",
        out,
    )
    assert got.exit_code == 0, got.output
    kept = read_jsonl(out)
    weakest = next(p["training_id"] for p in result.pairs if p["score"] == scores[0])
    assert [r["id"] for r in kept if r["id"] in PLANTED] == [weakest] and len(kept) == 5


def test_benchmark_option_narrows_the_comparison(train_file, benchmarks_dir, tmp_path):
    out = tmp_path / "mmlu.jsonl"
    got = run(
        train_file,
        "--benchmarks-dir",
        benchmarks_dir,
        "--benchmark",
        "mmlu_high_school_biology",
        "--out",
        out,
    )
    assert got.exit_code == 0, got.output
    manifest = json.loads(out.with_name("mmlu.manifest.json").read_text())
    assert list(manifest["decontamination"]["benchmarks"]) == ["mmlu_high_school_biology"]
    assert manifest["decontamination"]["removed_per_source"] == {"open_platypus": 1}


def bad_train(folder):
    write_jsonl(folder / "train.jsonl", training_rows()[:1])
    (folder / "train.jsonl").write_text((folder / "train.jsonl").read_text() + '{"instruction": "x",\n')


def missing_instruction(folder):
    write_jsonl(folder / "train.jsonl", [{"input": "", "output": "y"}])


def bad_mmlu(folder):
    write_jsonl(
        folder / "bench" / "mmlu_philosophy.jsonl", [{"question": "Q?", "choices": "A B C D", "answer": 0}]
    )


def bad_truthfulqa(folder):
    (folder / "bench" / "truthfulqa_mc1.json").write_text(json.dumps([{"question": "Q?", "mc1_targets": {}}]))


def missing_bbq(folder):
    (folder / "bench" / "bbq.parquet").unlink()


CASES = {
    "malformed_training_row": (bad_train, [], r"train.jsonl:2: malformed JSON"),
    "training_row_without_instruction": (
        missing_instruction,
        [],
        r"train.jsonl:1: missing required field 'instruction' \(row has: input, output\)",
    ),
    "benchmark_row_wrong_type": (
        bad_mmlu,
        [],
        r"mmlu_philosophy.jsonl:1: field 'choices' must be a list of str",
    ),
    "benchmark_nested_field": (
        bad_truthfulqa,
        [],
        r"truthfulqa_mc1.json: row 0: field 'mc1_targets.choices' must",
    ),
    "missing_benchmark_file": (missing_bbq, [], r"missing benchmark file: no bbq\{.jsonl\|.json"),
    "unknown_benchmark": (
        None,
        ["--benchmark", "mmlu_cooking"],
        r"unknown benchmark mmlu_cooking \(known: mmlu_phil",
    ),
    "threshold_out_of_range": (None, ["--threshold", "1.5"], r"Invalid value for '--threshold'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_cleanly_and_writes_nothing(case, benchmarks_dir, tmp_path):
    spoil, extra, message = CASES[case]
    shutil.copytree(benchmarks_dir, tmp_path / "bench")
    write_jsonl(tmp_path / "train.jsonl", training_rows())
    if spoil:
        spoil(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    got = run(tmp_path / "train.jsonl", "--benchmarks-dir", tmp_path / "bench", *extra, "--out", out)
    assert got.exit_code != 0
    assert re.search(message, got.output), got.output
    assert not out.parent.exists()


# --- inside a build ---------------------------------------------------------------------------------------


def platypus_file(folder):
    """Open-Platypus rows in their hub schema: one a reworded MMLU question, one unrelated."""
    planted = PLANTED["open_platypus:1"][1]
    return write_jsonl(
        folder / "platypus.jsonl",
        [
            {
                "instruction": "Name three primary colours.",
                "input": "",
                "output": "Red, yellow, blue.",
                "data_source": "ARB",
            },
            {
                "instruction": planted["instruction"],
                "input": planted["input"],
                "output": "B",
                "data_source": "scienceqa",
            },
        ],
    )


def test_build_option_counts_per_benchmark_and_source(benchmarks_dir, tmp_path):
    out = tmp_path / "v1.jsonl"
    got = CliRunner().invoke(
        main,
        [
            "build",
            "--mixture",
            "v1",
            "--sample",
            "--path",
            f"open_platypus={platypus_file(tmp_path)}",
            "--decontaminate-dir",
            str(benchmarks_dir),
            "--out",
            str(out),
        ],
    )
    assert got.exit_code == 0, got.output
    assert "-> 2 after near-dedup -> 1 after decontamination" in got.output
    assert [r["id"] for r in read_jsonl(out)] == ["open_platypus:0"]
    manifest = json.loads(out.with_name("v1.manifest.json").read_text())
    assert manifest["stages"]["decontaminate"] == {"removed": 1, "out": 1}
    assert manifest["sources"]["open_platypus"]["contaminated"] == 1
    assert manifest["sources"]["open_platypus"]["out"] == manifest["output"]["rows"] == 1
    assert manifest["decontamination"]["benchmarks"]["mmlu_high_school_biology"]["removed"] == 1
    pairs = read_jsonl(out.with_name("v1.contamination.jsonl"))
    assert [(p["training_id"], p["benchmark"]) for p in pairs] == [
        ("open_platypus:1", "mmlu_high_school_biology")
    ]


def test_mixture_block_and_its_bad_benchmark_name(benchmarks_dir, tmp_path):
    mixture = {
        "name": "mine",
        "seed": 1,
        "sources": [{"source": "open_platypus", "percent": 100, "path": str(platypus_file(tmp_path))}],
        "decontaminate": {
            "threshold": 0.8,
            "benchmarks": ["mmlu_high_school_biology", "bbq"],
            "benchmarks_dir": str(benchmarks_dir),
        },
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mixture))
    got = CliRunner().invoke(
        main, ["build", "--mixture", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "m.jsonl")]
    )
    assert got.exit_code == 0, got.output
    decontamination = json.loads((tmp_path / "m.manifest.json").read_text())["decontamination"]
    assert sorted(decontamination["benchmarks"]) == ["bbq", "mmlu_high_school_biology"]
    assert decontamination["removed_per_source"] == {"open_platypus": 1}

    mixture["decontaminate"]["benchmarks"] = ["mmlu_cooking"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(mixture))
    got = CliRunner().invoke(
        main, ["build", "--mixture", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "b.jsonl")]
    )
    assert (
        got.exit_code != 0
        and "`decontaminate.benchmarks`: Value error, unknown benchmark mmlu_cooking" in got.output
    )
    assert not (tmp_path / "b.jsonl").exists()
