"""databricks-dolly-15k: instructions and answers written by Databricks employees.

- hub: `databricks/databricks-dolly-15k` @ b122d1b5, split train
- columns: `instruction`, `context` ("" if none), `response`, `category` (all str)
- licence: CC-BY-SA-3.0; LLM-generated: no; rows: 15,011
- Table 1: Dolly.

`context` becomes `input`, `response` becomes `output`, `category` the sub-source.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "databricks/databricks-dolly-15k"
REVISION = "b122d1b59226377d51cb23bc16e9769e8ede491f"
COLUMNS = {"instruction": str, "context": str, "response": str, "category": str}
LICENCE = "CC-BY-SA-3.0"


def to_records(row: dict, index: int) -> list[Record]:
    return [
        Record(
            instruction=row["instruction"],
            input=row["context"],
            output=row["response"],
            source="dolly",
            row=index,
            licence=LICENCE,
            llm_generated=False,
            sub_source=row["category"],
        )
    ]


SPEC = SourceSpec(
    name="dolly",
    hub_id=HUB_ID,
    revision=REVISION,
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
)
