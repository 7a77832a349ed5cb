"""Open-Platypus: the STEM/logic instruction set of the Platypus paper, one row per instruction.

- hub: `garage-bAInd/Open-Platypus` @ 37141edb (the revision whose parquet has 24,926 rows), split train
- columns: `instruction`, `input`, `output`, `data_source` (all str)
- licence: per subset (below); LLM-generated: `airoboros` and `leetcode_ne` (GPT-4); rows: 24,926
- Table 1: "Filtered Platypus", the seven human-written subsets, 20,605 rows (filters/platypus_subsets.py).

Rows map field for field; `data_source` becomes the sub-source. The `guanaco` rows keep only their first
exchange (see sources/guanaco.py). Contamination hazard: `theoremqa` rows are TheoremQA test questions and
MATH test problems were merged in; decontamination is a separate step.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec
from data_builders.sources.guanaco import cut_later_turns

HUB_ID = "garage-bAInd/Open-Platypus"
REVISION = "37141edbdb7826378cce118c46a109b813e1f038"
COLUMNS = {"instruction": str, "input": str, "output": str, "data_source": str}
LLM_GENERATED = {"airoboros", "leetcode_ne"}  # written by GPT-4
# Licence of each subset's upstream dataset.
LICENCES = {
    "MATH/PRM-800K": "MIT",
    "theoremqa": "MIT",
    "scibench": "MIT",
    "ARB": "CC-BY-4.0",
    "scienceqa": "CC-BY-NC-SA-4.0",
    "reclor": "non-commercial",
    "tigerbot-kaggle": "Apache-2.0",
    "guanaco": "Apache-2.0",
}


def to_records(row: dict, index: int) -> list[Record]:
    subset = row["data_source"]
    output = cut_later_turns(row["output"]) if subset == "guanaco" else row["output"]
    return [
        Record(
            instruction=row["instruction"],
            input=row["input"],
            output=output,
            source="open_platypus",
            row=index,
            licence=LICENCES.get(subset, "unknown"),
            llm_generated=subset in LLM_GENERATED,
            sub_source=subset,
        )
    ]


SPEC = SourceSpec(
    name="open_platypus",
    hub_id=HUB_ID,
    revision=REVISION,
    split="train",
    columns=COLUMNS,
    licence="per subset",
    llm_generated=None,
    to_records=to_records,
)
