"""FaithDial: information-seeking dialogue turns, each with the knowledge snippet the answer must stay true
to.

- hub: `McGill-NLP/FaithDial` @ 7a414e80 (main since "Fix task tags (#2)"; the revision MTEB pins), served by
  a loading script (FaithDial.py), which datasets >= 4 no longer runs: read from the script's own data file,
  `data/train.json`, a JSON array of dialogues `{"utterances": [turn, ...]}`
- columns of a turn: `history` (list of str), `knowledge` (str), `response` (str, the faithful rewrite); also
  `speaker`, `original_response`, `BEGIN`, `VRM`, not used. A local copy may hold turns (as the Hub's parquet
  export and the shipped sample do, with `dialog_idx`) or the Hub's dialogues: both read the same
- licence: MIT; LLM-generated: no; rows: ~18.4k train turns
- Table 1: FaithDial.

Conversion: the knowledge and the dialogue so far are the input; `response` (the faithful one, never
`original_response`) is the output. History turns are labelled from the end: the last is the user's.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "McGill-NLP/FaithDial"
REVISION = "7a414e80725eac766f2602676dc8b39f80b061e4"
HUB_FILES = ("data/train.json",)
COLUMNS = {"history": list, "knowledge": str, "response": str}
LICENCE = "MIT"
INSTRUCTION = (
    "Continue the conversation as the assistant. Answer the user's last message using only the "
    "knowledge given; do not add facts it does not contain."
)


def turns(row: dict, index: int) -> list[dict]:
    """A dialogue of data/train.json as its turns, each with `dialog_idx` = the dialogue's index; a turn as
    is."""
    if "utterances" not in row:
        return [row]
    utterances = row["utterances"]
    if not isinstance(utterances, list) or not all(isinstance(u, dict) for u in utterances):
        raise ValueError("field 'utterances' must be a list of objects")
    return [{"dialog_idx": index, **u} for u in utterances]


def context(knowledge: str, history: list[str]) -> str:
    last = len(history) - 1
    lines = [f"{'User' if (last - i) % 2 == 0 else 'Assistant'}: {turn}" for i, turn in enumerate(history)]
    return f"Knowledge: {knowledge}\n\n" + "\n".join(lines)


def to_records(row: dict, index: int) -> list[Record]:
    return [
        Record(
            instruction=INSTRUCTION,
            input=context(row["knowledge"], row["history"]),
            output=row["response"],
            source="faithdial",
            row=index,
            licence=LICENCE,
            llm_generated=False,
        )
    ]


SPEC = SourceSpec(
    name="faithdial",
    hub_id=HUB_ID,
    revision=REVISION,
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
    hub_files=HUB_FILES,
    expand=turns,
)
