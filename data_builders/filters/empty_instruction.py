"""Drop a record whose instruction is empty or only whitespace: the prompt would ask nothing."""

from __future__ import annotations

from data_builders.records import Record


class EmptyInstruction:
    name = "empty_instruction"

    def __call__(self, record: Record) -> str | None:
        return None if record.instruction.strip() else self.name
