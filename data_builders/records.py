"""One Alpaca record from end to end, like datatrove's `Document`: every stage takes and yields these.

The three Alpaca fields are what training reads; the rest is provenance (which dataset, which subset, which
original row and turn) and the metadata the filters and the manifest need (licence, LLM-generated or not).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Unicode categories nobody sees: controls, format characters (U+200B zero-width space, U+200C/D joiners,
# U+2060 word joiner, U+FEFF byte order mark, ...) and spaces of every kind.
INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """`text` shows nothing: empty, or only whitespace and invisible characters (`str.strip` keeps U+200B)."""
    return all(unicodedata.category(c) in INVISIBLE for c in text)


def prompt_text(instruction: str, input: str) -> str:
    """Instruction + input, the part of a training row a benchmark question could be copied into."""
    return f"{instruction}\n{input}" if input else instruction


@dataclass(slots=True, frozen=True, kw_only=True)
class Record:
    instruction: str
    input: str
    output: str
    source: str  # adapter name, e.g. "open_platypus"
    row: int  # index of the original row in its file or hub split (0-based)
    licence: str
    llm_generated: bool | None  # None: unknown (codegen, user sources that do not say)
    sub_source: str = ""  # e.g. Platypus' `data_source`, Dolly's `category`, FLAN's `task_name`
    turn: int = 0  # which exchange of a multi-turn row (LIMA, FaithDial history is context, not turns)

    @property
    def id(self) -> str:
        """Stable across rebuilds: `source:row` (plus `.turn` for later turns of a conversation)."""
        return f"{self.source}:{self.row}" + (f".{self.turn}" if self.turn else "")

    @property
    def prompt_text(self) -> str:
        """What near-duplicate removal compares: instruction + input, not the output (as Platypus does)."""
        return prompt_text(self.instruction, self.input)

    def to_json(self) -> dict:
        """The output row: Alpaca fields first (what Axolotl reads), then provenance for auditing."""
        return {
            "instruction": self.instruction,
            "input": self.input,
            "output": self.output,
            "id": self.id,
            "source": self.source,
            "sub_source": self.sub_source,
            "licence": self.licence,
        }
