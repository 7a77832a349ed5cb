"""FLAN v2 chain-of-thought submix: exemplar questions with worked reasoning in the target.

- hub: `DataProvenanceInitiative/cot_submix_original` (revision not pinned here), split train
- columns: `inputs`, `targets`, `task_source`, `task_name`, `template_type` (all str)
- licence: mixed, per task (recorded as "mixed"; the licence filter treats it as research-only)
- LLM-generated: no; rows: 183,848
- Table 1: FLAN-v2 CoT.

`inputs` becomes the instruction, `targets` the output (no separate input), `task_name` the sub-source.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "DataProvenanceInitiative/cot_submix_original"
COLUMNS = {"inputs": str, "targets": str, "task_name": str}
LICENCE = "mixed"


def to_records(row: dict, index: int) -> list[Record]:
    return [
        Record(
            instruction=row["inputs"],
            input="",
            output=row["targets"],
            source="flan_v2_cot",
            row=index,
            licence=LICENCE,
            llm_generated=False,
            sub_source=row["task_name"],
        )
    ]


SPEC = SourceSpec(
    name="flan_v2_cot",
    hub_id=HUB_ID,
    revision="main",
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
)
