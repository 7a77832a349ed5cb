"""openassistant-guanaco: human-written OpenAssistant conversations in one `text` field.

- hub: `timdettmers/openassistant-guanaco` @ 657e198a (the commit that uploaded the data), split train
- licence: Apache-2.0; LLM-generated: no; rows: 9,846 train
- Table 1: reaches the paper inside Open-Platypus (`data_source == "guanaco"`, 797 STEM rows), not on its own.

Conversion (Platypus' `guanaco_format.py` splits at the first `### Assistant:`): the first human turn is the
instruction, the first assistant turn the output. Later turns are dropped, not kept in the output: left in,
they teach the model to write the user's next message (Platypus rewrote them to `### Instruction:` /
`### Response:` markers, which collide with the Alpaca template; `first_exchange` cuts those too).
"""

from __future__ import annotations

import re

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "timdettmers/openassistant-guanaco"
REVISION = "657e198a25af333f8a44beef11166f9cff1d58a5"
LICENCE = "Apache-2.0"
COLUMNS = {"text": str}
# Where a later turn starts, in the hub's form or as Platypus rewrote it.
NEXT_TURN = re.compile(r"### (?:Human|Instruction):")


def first_exchange(text: str) -> tuple[str, str]:
    """(first human turn, first assistant turn) of `### Human: ... ### Assistant: ...` text."""
    if "### Assistant:" not in text:
        raise ValueError("guanaco text has no '### Assistant:' turn")
    human, rest = text.split("### Assistant:", 1)
    return human.replace("### Human:", "").strip(), cut_later_turns(rest)


def cut_later_turns(output: str) -> str:
    """The output up to the next human turn (`### Human:` or Platypus' `### Instruction:`)."""
    return NEXT_TURN.split(output, 1)[0].strip()


def to_records(row: dict, index: int) -> list[Record]:
    instruction, output = first_exchange(row["text"])
    return [
        Record(
            instruction=instruction,
            input="",
            output=output,
            source="guanaco",
            row=index,
            licence=LICENCE,
            llm_generated=False,
        )
    ]


SPEC = SourceSpec(
    name="guanaco",
    hub_id=HUB_ID,
    revision=REVISION,
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
)
