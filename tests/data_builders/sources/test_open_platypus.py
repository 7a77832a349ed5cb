from data_builders.records import Record
from data_builders.sources import open_platypus
from data_builders.sources.base import load


def test_fields_map_one_to_one_with_subset_licence_and_llm_flag(jsonl):
    path = jsonl(
        "open_platypus",
        [
            {"instruction": "2+2?", "input": "", "output": "4", "data_source": "MATH/PRM-800K"},
            {"instruction": "Pick one.", "input": "A or B", "output": "A", "data_source": "reclor"},
            {"instruction": "Write a poem.", "input": "", "output": "Roses.", "data_source": "airoboros"},
        ],
    )
    assert load(open_platypus.SPEC, path).records == [
        Record(
            instruction="2+2?",
            input="",
            output="4",
            source="open_platypus",
            row=0,
            licence="MIT",
            llm_generated=False,
            sub_source="MATH/PRM-800K",
        ),
        Record(
            instruction="Pick one.",
            input="A or B",
            output="A",
            source="open_platypus",
            row=1,
            licence="non-commercial",
            llm_generated=False,
            sub_source="reclor",
        ),
        Record(
            instruction="Write a poem.",
            input="",
            output="Roses.",
            source="open_platypus",
            row=2,
            licence="unknown",
            llm_generated=True,
            sub_source="airoboros",
        ),
    ]


def test_guanaco_rows_keep_only_the_first_exchange(jsonl):
    path = jsonl(
        "open_platypus",
        [
            {
                "instruction": "What is a diode?",
                "input": "",
                "output": "A one-way valve for current.\n\n### Instruction:\nAnd a triode?\n\n### "
                "Response:\nAn amplifier.",
                "data_source": "guanaco",
            }
        ],
    )
    [record] = load(open_platypus.SPEC, path).records
    assert record.output == "A one-way valve for current."
    assert record.licence == "Apache-2.0"
