"""Benchmark test items as texts: each paper benchmark read from a local file in its hub schema (jsonl, a JSON
array, parquet), and the hub dataset each would come from, as lm-eval's own task config names it."""

from benchmark_files import BBQ_CONTEXT, BBQ_QUESTION, MMLU, TRUTHFULQA

from data_builders.benchmarks import BENCHMARKS, hub_origin, load_benchmarks


def test_every_paper_benchmark_loads_with_its_texts(benchmarks_dir):
    got = load_benchmarks(list(BENCHMARKS), benchmarks_dir)
    assert len(got.stats) == 20 and sum(name.startswith("mmlu_") for name in got.stats) == 17
    assert {n: (s["items"], s["texts"]) for n, s in got.stats.items() if not n.startswith("mmlu_")} == {
        "truthfulqa_mc1": (2, 4),
        "bbq": (2, 2),
        "cnn_dailymail_abisee": (1, 1),
    }
    assert got.stats["bbq"]["origin"]["file"] == "bbq.parquet"
    assert len(got.texts) == len(got.benchmark) == len(got.item) == 17 * 2 + 4 + 2 + 1

    question, choices = MMLU["high_school_biology"]
    at = got.item.index("mmlu_high_school_biology:0")
    lettered = f"{question}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}"
    assert got.texts[at : at + 2] == [question, lettered]
    at = got.item.index("truthfulqa_mc1:1")
    assert got.texts[at] == TRUTHFULQA[1][0] and got.texts[at + 1].endswith("\nB. No, it is illegal.")
    assert got.texts[got.item.index("bbq:0")] == f"{BBQ_CONTEXT}\n{BBQ_QUESTION}"


def test_a_subset_loads_only_those_benchmarks(benchmarks_dir):
    got = load_benchmarks(["bbq", "mmlu_philosophy"], benchmarks_dir)
    assert list(got.stats) == ["bbq", "mmlu_philosophy"] and set(got.benchmark) == {"bbq", "mmlu_philosophy"}


def test_hub_datasets_are_the_ones_lm_eval_scores():
    assert hub_origin(BENCHMARKS["mmlu_moral_scenarios"]) == {
        "hub_id": "cais/mmlu",
        "config": "moral_scenarios",
        "split": "test",
    }
    assert hub_origin(BENCHMARKS["truthfulqa_mc1"])["split"] == "validation"
    assert hub_origin(BENCHMARKS["bbq"])["hub_id"] == "oskarvanderwal/bbq"
    assert hub_origin(BENCHMARKS["cnn_dailymail_abisee"]) == {
        "hub_id": "abisee/cnn_dailymail",
        "config": "3.0.0",
        "split": "test",
    }
