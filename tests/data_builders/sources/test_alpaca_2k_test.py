from data_builders.records import Record
from data_builders.sources import alpaca_2k_test
from data_builders.sources.base import load


def test_alpaca_rows_pass_through_flagged_llm_generated(jsonl):
    path = jsonl("alpaca_2k_test", [{"instruction": "Translate.", "input": "Cat", "output": "Chat"}])
    assert load(alpaca_2k_test.SPEC, path).records == [
        Record("Translate.", "Cat", "Chat", "alpaca_2k_test", 0, "CC-BY-NC-4.0", True),
    ]
