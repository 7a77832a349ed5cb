"""Drop a record whose output is empty or only whitespace: there is nothing to learn from it."""

from __future__ import annotations

from data_builders.records import Record


class EmptyOutput:
    name = "empty_output"

    def __call__(self, record: Record) -> str | None:
        return None if record.output.strip() else self.name
