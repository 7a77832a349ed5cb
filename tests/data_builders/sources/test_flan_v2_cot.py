from data_builders.records import Record
from data_builders.sources import flan_v2_cot
from data_builders.sources.base import load


def test_inputs_to_instruction_targets_to_output(jsonl):
    path = jsonl("flan_v2_cot", [{"inputs": "Can a penguin fly? Think.", "targets": "No.", "task_source": "CoT",
                                  "task_name": "cot_strategyqa", "template_type": "zs_opt"}])
    assert load(flan_v2_cot.SPEC, path).records == [
        Record("Can a penguin fly? Think.", "", "No.", "flan_v2_cot", 0, "mixed", False,
               sub_source="cot_strategyqa"),
    ]
