from data_builders.records import Record
from data_builders.sources import lima
from data_builders.sources.base import load

L = "CC-BY-NC-SA-4.0"


def test_one_record_per_pair_with_earlier_turns_as_input(jsonl):
    path = jsonl(
        "lima",
        [
            {"conversations": ["Why is the sky blue?", "Scattering."], "source": "stackexchange"},
            {
                "conversations": ["Name a cat.", "Smokey.", "Less common?", "Pewter.", "Dangling question"],
                "source": "multi_turn",
            },
        ],
    )
    assert load(lima.SPEC, path).records == [
        Record(
            instruction="Why is the sky blue?",
            input="",
            output="Scattering.",
            source="lima",
            row=0,
            licence=L,
            llm_generated=False,
            sub_source="stackexchange",
        ),
        Record(
            instruction="Name a cat.",
            input="",
            output="Smokey.",
            source="lima",
            row=1,
            licence=L,
            llm_generated=False,
            sub_source="multi_turn",
            turn=0,
        ),
        Record(
            instruction="Less common?",
            input="User: Name a cat.\n\nAssistant: Smokey.",
            output="Pewter.",
            source="lima",
            row=1,
            licence=L,
            llm_generated=False,
            sub_source="multi_turn",
            turn=1,
        ),
    ]
    assert [r.id for r in load(lima.SPEC, path).records] == ["lima:0", "lima:1", "lima:1.1"]


def test_copies_without_the_source_field_load_and_a_wrong_type_is_named(jsonl):
    """LLaMA-Factory's copy (data_builders/real/rows/lima.jsonl.gz) has no `source`; when present it must be
    str."""
    import pytest

    from data_builders.errors import RowError

    path = jsonl("lima", [{"conversations": ["Why is the sky blue?", "Scattering."]}])
    assert load(lima.SPEC, path).records == [
        Record(
            instruction="Why is the sky blue?",
            input="",
            output="Scattering.",
            source="lima",
            row=0,
            licence=L,
            llm_generated=False,
        )
    ]
    path = jsonl("lima", [{"conversations": ["Q?", "A."], "source": 7}])
    with pytest.raises(RowError, match=r"lima.jsonl:1: field 'source' must be str, got int"):
        load(lima.SPEC, path)
