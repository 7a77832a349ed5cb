"""Each stage of data_builders/build.py on records made here, in memory: what it keeps, drops, counts and
warns (the load stage reads files: tests/data_builders/test_cli.py and test_strict_readers.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from data_builders.benchmarks import BenchmarkTexts
from data_builders.build import (
    BuildOptions,
    Deduplicated,
    Loaded,
    build_manifest,
    filter_and_select,
    filter_rules,
    remove_benchmark_copies,
    remove_near_duplicates,
    token_stats,
)
from data_builders.errors import DataError
from data_builders.mixing import Mixture, seeded_sample
from data_builders.records import Record


def record(source: str, row: int, instruction: str, output: str = "An answer.", **extra) -> Record:
    return Record(
        instruction=instruction,
        input="",
        output=output,
        source=source,
        row=row,
        licence=extra.pop("licence", "CC-BY-SA-3.0"),
        llm_generated=False,
        **extra,
    )


def mixture(**entries) -> Mixture:
    """A mixture of `source=percent` (a float) or `source=rows` (an int) entries, in the order given."""
    return Mixture.model_validate(
        {
            "name": "m",
            "seed": 3,
            "sources": [
                {"source": name, ("rows" if isinstance(share, int) else "percent"): share}
                for name, share in entries.items()
            ],
        }
    )


DOLLY = [record("dolly", i, f"Dolly question {i}?") for i in range(10)]
PLATYPUS = [
    record("open_platypus", 0, "Prove that 2 is prime.", sub_source="MATH/PRM-800K"),
    record("open_platypus", 1, "Write a poem.", sub_source="airoboros"),
    # dolly:3 normalised: exact duplicate
    record("open_platypus", 2, "  DOLLY question 3? ", sub_source="scienceqa"),
    record("open_platypus", 3, "What is entropy?", output=" \u200b", sub_source="scienceqa"),
    record("open_platypus", 4, "Name a noble gas.", sub_source="scibench"),
]


def test_filter_and_select_drops_with_reasons_then_takes_each_entrys_seeded_share():
    selected = filter_and_select(
        mixture(dolly=50.0, open_platypus=5), {"dolly": DOLLY, "open_platypus": PLATYPUS}, filter_rules()
    )
    assert selected.dropped_counts == Counter(
        llm_generated=1, exact_duplicate=1, empty_output=1, paper_choice=1
    )
    assert {(r.id, reason) for r, reason in selected.dropped} == {
        ("open_platypus:1", "llm_generated"),
        ("open_platypus:2", "exact_duplicate"),
        ("open_platypus:3", "empty_output"),
        ("open_platypus:4", "paper_choice"),
    }
    # mixture order, each source's seeded sample in its original order; rows: 5 asked, 1 left after the
    # filters
    assert selected.records == seeded_sample(DOLLY, 5, 3, "dolly") + [PLATYPUS[0]]
    assert selected.per_source["dolly"] == {
        "dropped": {},
        "available": 10,
        "percent": 50.0,
        "rows_requested": None,
        "selected": 5,
    }
    assert selected.per_source["open_platypus"]["available"] == 1
    assert selected.per_source["open_platypus"]["selected"] == 1 and selected.warnings == []


def test_a_source_left_with_no_row_is_a_warning_and_a_mixture_with_none_an_error():
    only_airoboros = [PLATYPUS[1]]
    selected = filter_and_select(
        mixture(dolly=10.0, open_platypus=100.0),
        {"dolly": DOLLY, "open_platypus": only_airoboros},
        filter_rules(),
    )
    assert selected.warnings == ["source open_platypus: contributes 0 rows (1 records, 0 after filters)"]
    with pytest.raises(DataError, match="mixture m selects 0 rows: open_platypus 1 records, 0 after filters"):
        filter_and_select(mixture(open_platypus=100.0), {"open_platypus": only_airoboros}, filter_rules())


def test_commercial_licence_rule_drops_research_only_rows():
    rows = [record("dolly", 0, "Kept?"), record("dolly", 1, "Dropped?", licence="non-commercial")]
    selected = filter_and_select(mixture(dolly=100.0), {"dolly": rows}, filter_rules("commercial"))
    assert selected.records == rows[:1] and selected.dropped_counts == Counter(licence_noncommercial=1)


NEAR = [
    record("dolly", 0, "What is the capital of France?"),
    record("dolly", 1, "Give me three tips for growing tomatoes in a small garden."),
    record("lima", 0, "What's the capital of France?"),  # a reworded copy of dolly:0
]


@pytest.fixture(scope="module")
def deduplicated() -> Deduplicated:
    return remove_near_duplicates(NEAR, 0.9, BuildOptions(), keep_vectors=True)


def test_near_dedup_keeps_the_first_seen_and_pairs_each_removal_with_what_stayed(deduplicated):
    assert deduplicated.records == NEAR[:2]
    [pair] = deduplicated.pairs
    assert (pair["kept_id"], pair["removed_id"], pair["removed"]) == (
        "dolly:0",
        "lima:0",
        NEAR[2].prompt_text,
    )
    assert 0.9 < pair["score"] <= 1
    assert deduplicated.removed_per_source == Counter(lima=1)
    assert deduplicated.stats["removed"] == 1 and deduplicated.stats["out"] == 2
    assert deduplicated.vectors.shape[0] == 2  # the kept rows' vectors, for decontamination
    assert np.allclose(np.linalg.norm(deduplicated.vectors, axis=1), 1, atol=1e-5)


def test_benchmark_copies_go_by_near_dedups_own_vectors_and_none_left_is_an_error(deduplicated):
    tips = NEAR[1].prompt_text
    bench = BenchmarkTexts(
        [tips, "Which planet is the largest?"],
        ["mmlu_philosophy"] * 2,
        ["mmlu_philosophy:0", "mmlu_philosophy:1"],
        {"mmlu_philosophy": {"origin": {}, "items": 2, "texts": 2}},
    )
    kept, found = remove_benchmark_copies(mixture(dolly=100.0), deduplicated, bench, 0.8, BuildOptions())
    assert kept == NEAR[:1]
    assert [(p["training_id"], p["benchmark_id"]) for p in found.pairs] == [("dolly:1", "mmlu_philosophy:0")]
    assert found.summary["removed_per_source"] == {"dolly": 1}
    with pytest.raises(DataError, match="decontamination removed every one of its 2 rows"):
        remove_benchmark_copies(mixture(dolly=100.0), deduplicated, bench, 0.0001, BuildOptions())


def test_manifest_adds_up_each_stages_counts_per_source():
    rows = {"dolly": DOLLY, "open_platypus": PLATYPUS}
    loaded = Loaded(
        rows,
        {
            name: {
                "origin": {"file": f"{name}.jsonl"},
                "rows_in": len(v) + 1,
                "bad_rows": 1,
                "records": len(v),
            }
            for name, v in rows.items()
        },
        ["a load warning"],
    )
    selected = filter_and_select(mixture(dolly=50.0, open_platypus=5), rows, filter_rules())
    deduped = Deduplicated(
        selected.records[1:], [], Counter(dolly=1), {"method": "exact", "removed": 1, "out": 5}, None
    )
    manifest = build_manifest(
        mixture(dolly=50.0, open_platypus=5), BuildOptions(), loaded, selected, deduped, deduped.records, None
    )
    assert manifest["stages"] == {
        "load": {"rows_in": 17, "bad_rows": 2, "records": 15},
        "filter": {
            "dropped": {"empty_output": 1, "exact_duplicate": 1, "llm_generated": 1, "paper_choice": 1},
            "out": 11,
        },
        "select": {"out": 6},
        "near_dedup": {"method": "exact", "removed": 1, "out": 5},
    }
    assert manifest["sources"]["dolly"]["near_duplicates"] == 1 and manifest["sources"]["dolly"]["out"] == 4
    assert manifest["sources"]["open_platypus"]["out"] == 1
    assert manifest["licences"] == {"CC-BY-SA-3.0 (commercial)": 5} and manifest["llm_generated_rows"] == 0
    assert manifest["warnings"] == ["a load warning"] and "decontamination" not in manifest


def test_token_stats_count_the_rendered_row_and_its_eos(tiny_tokenizer, tiny_model):
    from data_builders.alpaca_prompt import render_prompt

    stats = token_stats(DOLLY[:3], tiny_tokenizer, str(tiny_model))
    expected = [
        len(tiny_tokenizer(render_prompt(r.instruction, r.input) + r.output)["input_ids"]) + 1
        for r in DOLLY[:3]
    ]
    assert stats["total"] == sum(expected) and stats["rows_over_1024"] == 0
    assert stats["tokenizer"] == tiny_model.name
