import pytest

from data_builders.errors import RowError
from data_builders.records import Record
from data_builders.sources import codegen
from data_builders.sources.base import load


def test_default_mapping_reads_alpaca_columns(jsonl):
    path = jsonl("codegen", [{"instruction": "Reverse s.", "input": "", "output": "s[::-1]"}])
    assert load(codegen.SPEC, path).records == [
        Record(
            instruction="Reverse s.",
            input="",
            output="s[::-1]",
            source="codegen",
            row=0,
            licence="unknown",
            llm_generated=None,
        )
    ]


def test_user_mapping_reads_other_columns_and_input_is_optional(jsonl):
    path = jsonl("codegen", [{"prompt": "Square x.", "completion": "x * x", "lang": "py"}])
    spec = codegen.spec({"instruction": "prompt", "output": "completion"})
    assert load(spec, path).records == [
        Record(
            instruction="Square x.",
            input="",
            output="x * x",
            source="codegen",
            row=0,
            licence="unknown",
            llm_generated=None,
        )
    ]


def test_mapping_to_a_missing_column_names_the_columns_found(jsonl):
    path = jsonl("codegen", [{"prompt": "Square x.", "answer": "x * x"}])
    spec = codegen.spec({"instruction": "prompt", "output": "completion"})
    with pytest.raises(RowError, match=r"missing required field 'completion' \(row has: answer, prompt\)"):
        load(spec, path)
