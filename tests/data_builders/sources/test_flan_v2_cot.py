from data_builders.records import Record
from data_builders.sources import flan_v2_cot
from data_builders.sources.base import load


def test_inputs_to_instruction_targets_to_output(jsonl):
    path = jsonl(
        "flan_v2_cot",
        [
            {
                "inputs": "Can a penguin fly? Think.",
                "targets": "No.",
                "task_source": "CoT",
                "task_name": "cot_strategyqa",
                "template_type": "zs_opt",
            }
        ],
    )
    assert load(flan_v2_cot.SPEC, path).records == [
        Record(
            instruction="Can a penguin fly? Think.",
            input="",
            output="No.",
            source="flan_v2_cot",
            row=0,
            licence="mixed",
            llm_generated=False,
            sub_source="cot_strategyqa",
        ),
    ]
