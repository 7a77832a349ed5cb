from data_builders.records import Record
from data_builders.sources import dolly
from data_builders.sources.base import load


def test_context_becomes_input_response_becomes_output(jsonl):
    path = jsonl("dolly", [
        {"instruction": "When did it open?", "context": "It opened in 1921.", "response": "In 1921.",
         "category": "closed_qa"},
        {"instruction": "Name a fish.", "context": "", "response": "Tope", "category": "open_qa"},
    ])
    assert load(dolly.SPEC, path).records == [
        Record("When did it open?", "It opened in 1921.", "In 1921.", "dolly", 0, "CC-BY-SA-3.0", False,
               sub_source="closed_qa"),
        Record("Name a fish.", "", "Tope", "dolly", 1, "CC-BY-SA-3.0", False, sub_source="open_qa"),
    ]
