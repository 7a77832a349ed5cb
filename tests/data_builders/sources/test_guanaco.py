import pytest

from data_builders.errors import RowError
from data_builders.records import Record
from data_builders.sources import guanaco
from data_builders.sources.base import load


def test_split_at_first_assistant_and_drop_later_turns(jsonl):
    path = jsonl(
        "guanaco",
        [
            {"text": "### Human: Name a prime.### Assistant: 11.### Human: Another?### Assistant: 13."},
            {"text": "### Human: Hi there ### Assistant: Hello!"},
        ],
    )
    assert load(guanaco.SPEC, path).records == [
        Record(
            instruction="Name a prime.",
            input="",
            output="11.",
            source="guanaco",
            row=0,
            licence="Apache-2.0",
            llm_generated=False,
        ),
        Record(
            instruction="Hi there",
            input="",
            output="Hello!",
            source="guanaco",
            row=1,
            licence="Apache-2.0",
            llm_generated=False,
        ),
    ]


def test_text_without_assistant_turn_is_a_row_error_naming_the_line(jsonl):
    path = jsonl("guanaco", [{"text": "### Human: Hello?"}])
    with pytest.raises(RowError, match=r"guanaco.jsonl:1: .*no '### Assistant:'"):
        load(guanaco.SPEC, path)
