import pytest

from data_builders.errors import RowError
from data_builders.records import Record
from data_builders.sources import guanaco
from data_builders.sources.base import load


def test_split_at_first_assistant_and_drop_later_turns(jsonl):
    path = jsonl("guanaco", [
        {"text": "### Human: Name a prime.### Assistant: 11.### Human: Another?### Assistant: 13."},
        {"text": "### Human: Hi there ### Assistant: Hello!"},
    ])
    assert load(guanaco.SPEC, path).records == [
        Record("Name a prime.", "", "11.", "guanaco", 0, "Apache-2.0", False),
        Record("Hi there", "", "Hello!", "guanaco", 1, "Apache-2.0", False),
    ]


def test_text_without_assistant_turn_is_a_row_error_naming_the_line(jsonl):
    path = jsonl("guanaco", [{"text": "### Human: Hello?"}])
    with pytest.raises(RowError, match=r"guanaco.jsonl:1: .*no '### Assistant:'"):
        load(guanaco.SPEC, path)
