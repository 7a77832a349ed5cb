from data_builders.records import Record
from data_builders.sources import alpaca_2k
from data_builders.sources.base import load


def test_alpaca_rows_pass_through_flagged_llm_generated(jsonl):
    path = jsonl("alpaca_2k_test", [{"instruction": "Translate.", "input": "Cat", "output": "Chat"}])
    assert load(alpaca_2k.SPEC, path).records == [
        Record(
            instruction="Translate.",
            input="Cat",
            output="Chat",
            source="alpaca_2k_test",
            row=0,
            licence="CC-BY-NC-4.0",
            llm_generated=True,
        ),
    ]
