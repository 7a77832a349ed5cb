"""Drop a record whose instruction is empty or shows nothing (whitespace, zero-width characters): the prompt
would ask nothing."""

from __future__ import annotations

from data_builders.records import Record, is_blank


class EmptyInstruction:
    name = "empty_instruction"

    def __call__(self, record: Record) -> str | None:
        return self.name if is_blank(record.instruction) else None
