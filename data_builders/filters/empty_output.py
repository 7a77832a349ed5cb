"""Drop a record whose output is empty or shows nothing (whitespace, zero-width characters): there is nothing
to learn from it."""

from __future__ import annotations

from data_builders.records import Record, is_blank


class EmptyOutput:
    name = "empty_output"

    def __call__(self, record: Record) -> str | None:
        return self.name if is_blank(record.output) else None
