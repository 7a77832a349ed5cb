from data_builders.records import Record
from data_builders.sources import dolly
from data_builders.sources.base import load


def test_context_becomes_input_response_becomes_output(jsonl):
    path = jsonl(
        "dolly",
        [
            {
                "instruction": "When did it open?",
                "context": "It opened in 1921.",
                "response": "In 1921.",
                "category": "closed_qa",
            },
            {"instruction": "Name a fish.", "context": "", "response": "Tope", "category": "open_qa"},
        ],
    )
    assert load(dolly.SPEC, path).records == [
        Record(
            instruction="When did it open?",
            input="It opened in 1921.",
            output="In 1921.",
            source="dolly",
            row=0,
            licence="CC-BY-SA-3.0",
            llm_generated=False,
            sub_source="closed_qa",
        ),
        Record(
            instruction="Name a fish.",
            input="",
            output="Tope",
            source="dolly",
            row=1,
            licence="CC-BY-SA-3.0",
            llm_generated=False,
            sub_source="open_qa",
        ),
    ]
