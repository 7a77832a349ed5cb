"""FaithDial: information-seeking dialogue turns, each with the knowledge snippet the answer must stay true to.

- hub: `McGill-NLP/FaithDial`, revision `refs/convert/parquet` (the hub's parquet export: its loading script
  no longer runs under datasets >= 4), config plain_text, split train
- columns: `history` (list of str), `knowledge` (str), `response` (str, the faithful rewrite); also
  `original_response`, `BEGIN`, `VRM`, `dialog_idx`, not used
- licence: MIT; LLM-generated: no; rows: ~18.4k train turns
- Table 1: FaithDial.

Conversion: the knowledge and the dialogue so far are the input; `response` (the faithful one, never
`original_response`) is the output. History turns are labelled from the end: the last is the user's.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "McGill-NLP/FaithDial"
COLUMNS = {"history": list, "knowledge": str, "response": str}
LICENCE = "MIT"
INSTRUCTION = (
    "Continue the conversation as the assistant. Answer the user's last message using only the "
    "knowledge given; do not add facts it does not contain."
)


def context(knowledge: str, history: list[str]) -> str:
    last = len(history) - 1
    lines = [f"{'User' if (last - i) % 2 == 0 else 'Assistant'}: {turn}" for i, turn in enumerate(history)]
    return f"Knowledge: {knowledge}\n\n" + "\n".join(lines)


def to_records(row: dict, index: int) -> list[Record]:
    return [Record(instruction=INSTRUCTION, input=context(row["knowledge"], row["history"]),
                   output=row["response"], source="faithdial",
                   row=index, licence=LICENCE, llm_generated=False)]


SPEC = SourceSpec(name="faithdial", hub_id=HUB_ID, revision="refs/convert/parquet", split="train",
                  columns=COLUMNS, licence=LICENCE, llm_generated=False, to_records=to_records,
                  config="plain_text")
