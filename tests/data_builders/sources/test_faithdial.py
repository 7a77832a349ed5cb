from data_builders.records import Record
from data_builders.sources import faithdial
from data_builders.sources.base import load


def test_knowledge_and_history_are_input_and_the_faithful_response_is_output(jsonl):
    path = jsonl("faithdial", [{
        "dialog_idx": 7, "response": "Jazz began in New Orleans.", "original_response": "I love jazz!",
        "history": ["I like jazz.", "What kind?", "Old jazz. Where did it start?"],
        "knowledge": "Jazz originated in New Orleans.", "BEGIN": ["Generic"], "VRM": ["Disclosure"],
    }])
    assert load(faithdial.SPEC, path).records == [
        Record(instruction=faithdial.INSTRUCTION,
               input="Knowledge: Jazz originated in New Orleans.\n\n"
               "User: I like jazz.\nAssistant: What kind?\nUser: Old jazz. Where did it start?",
               output="Jazz began in New Orleans.", source="faithdial", row=0, licence="MIT", llm_generated=False),
    ]
