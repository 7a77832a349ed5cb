"""One case per drop reason, as datatrove's filter tests do: build a record, assert the reason."""

from collections import Counter

import pytest

from data_builders.filters.base import run_filters
from data_builders.filters.empty_output import EmptyOutput
from data_builders.filters.exact_dup import ExactDuplicate
from data_builders.filters.licence import Licence
from data_builders.filters.platypus_subsets import KEEP, PlatypusSubsets
from data_builders.records import Record


def rec(instruction="q", input="", output="a", source="dolly", licence="MIT", sub_source=""):
    return Record(
        instruction=instruction,
        input=input,
        output=output,
        source=source,
        row=0,
        licence=licence,
        llm_generated=False,
        sub_source=sub_source,
    )


@pytest.mark.parametrize("subset", sorted(KEEP))
def test_platypus_keeps_the_seven_subsets(subset):
    assert PlatypusSubsets()(rec(source="open_platypus", sub_source=subset)) is None


@pytest.mark.parametrize(
    ("subset", "reason"),
    [
        ("airoboros", "llm_generated"),
        ("leetcode_ne", "llm_generated"),
        ("scibench", "paper_choice"),
        ("camel", "unknown_subset"),
    ],
)
def test_platypus_drop_reasons(subset, reason):
    assert PlatypusSubsets()(rec(source="open_platypus", sub_source=subset)) == reason


def test_platypus_rule_ignores_other_sources():
    assert PlatypusSubsets()(rec(source="dolly", sub_source="airoboros")) is None


def test_empty_output():
    assert EmptyOutput()(rec(output=" \n\t")) == "empty_output"
    assert EmptyOutput()(rec(output="x")) is None


def test_exact_duplicate_on_normalised_instruction_and_input():
    rule = ExactDuplicate()
    assert rule(rec("Name  a Fish.", "Sea")) is None
    assert rule(rec("name a fish.", " sea ", output="different")) == "exact_duplicate"
    assert rule(rec("name a fish.", "lake")) is None  # the input differs


@pytest.mark.parametrize(
    ("use", "licence", "reason"),
    [
        ("commercial", "CC-BY-NC-4.0", "licence_noncommercial"),
        ("commercial", "unknown", "licence_unknown"),
        ("commercial", "Apache-2.0", None),
        ("research", "non-commercial", None),
        ("research", "mixed", None),
        ("research", "unknown", "licence_unknown"),
        ("any", "unknown", None),
    ],
)
def test_licence(use, licence, reason):
    assert Licence(use)(rec(licence=licence)) == reason


def test_runner_counts_each_reason_and_keeps_the_drops():
    records = [
        rec("a"),
        rec("a"),
        rec("b", output=""),
        rec("c", source="open_platypus", sub_source="scibench"),
    ]
    counts, dropped = Counter(), []
    kept = run_filters(records, [PlatypusSubsets(), EmptyOutput(), ExactDuplicate()], counts, dropped)
    assert kept == [records[0]]
    assert counts == {"exact_duplicate": 1, "empty_output": 1, "paper_choice": 1}
    assert [why for _, why in dropped] == ["exact_duplicate", "empty_output", "paper_choice"]


def test_an_instruction_or_output_of_zero_width_characters_is_empty():
    from data_builders.filters.empty_instruction import EmptyInstruction

    zero_width = "\u200b\u200c\u200d\u2060\ufeff"
    assert EmptyInstruction()(rec(instruction=zero_width)) == "empty_instruction"
    assert EmptyOutput()(rec(output=" \u200b ")) == "empty_output"
    assert EmptyInstruction()(rec(instruction="\u200bName a colour.")) is None
