from data_builders.records import Record
from data_builders.sources import faithdial
from data_builders.sources.base import load


def test_knowledge_and_history_are_input_and_the_faithful_response_is_output(jsonl):
    path = jsonl(
        "faithdial",
        [
            {
                "dialog_idx": 7,
                "response": "Jazz began in New Orleans.",
                "original_response": "I love jazz!",
                "history": ["I like jazz.", "What kind?", "Old jazz. Where did it start?"],
                "knowledge": "Jazz originated in New Orleans.",
                "BEGIN": ["Generic"],
                "VRM": ["Disclosure"],
            }
        ],
    )
    assert load(faithdial.SPEC, path).records == [
        Record(
            instruction=faithdial.INSTRUCTION,
            input="Knowledge: Jazz originated in New Orleans.\n\n"
            "User: I like jazz.\nAssistant: What kind?\nUser: Old jazz. Where did it start?",
            output="Jazz began in New Orleans.",
            source="faithdial",
            row=0,
            licence="MIT",
            llm_generated=False,
        ),
    ]


def test_the_hubs_dialogue_file_reads_as_its_turns_and_a_bad_dialogue_is_named(tmp_path):
    """data/train.json on the Hub holds dialogues {"utterances": [turn, ...]}; a local copy of it reads as the
    turns it holds, numbered across the file."""
    import json

    import pytest

    from data_builders.errors import RowError

    turn = {"history": ["Hi."], "knowledge": "K.", "response": "Hello.", "speaker": "Wizard"}
    path = tmp_path / "faithdial.json"
    path.write_text(json.dumps([{"utterances": [turn, turn]}, {"utterances": [turn]}]))
    assert [r.row for r in load(faithdial.SPEC, path).records] == [0, 1, 2]
    path.write_text(json.dumps([{"utterances": [turn]}, {"utterances": "not a list"}]))
    with pytest.raises(
        RowError, match=r"faithdial.json: row 1: field 'utterances' must be a list of objects"
    ):
        load(faithdial.SPEC, path)
