"""Sources read through a field mapping: codegen, whose schema is unpublished, and any user-defined source.

Like Axolotl's user-defined prompt format, a mapping names which original column holds the instruction,
the (optional) input and the output: `{instruction: prompt, output: completion}`. Unmapped `input` is "".
"""

from __future__ import annotations

from functools import partial

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

ALPACA_FIELDS = {"instruction": "instruction", "input": "input", "output": "output"}


def to_records(
    row: dict, index: int, *, name: str, fields: dict[str, str], licence: str, llm_generated: bool | None
) -> list[Record]:
    text = {key: row[column] for key, column in fields.items()}
    return [
        Record(
            instruction=text["instruction"],
            input=text.get("input", ""),
            output=text["output"],
            source=name,
            row=index,
            licence=licence,
            llm_generated=llm_generated,
        )
    ]


def check_fields(source: str, fields: dict[str, str]) -> None:
    """Raise a ValueError unless `fields` maps instruction and output (and optionally input) to column
    names."""
    if {"instruction", "output"} - fields.keys() or fields.keys() - ALPACA_FIELDS.keys():
        raise ValueError(
            f"fields of '{source}' must map instruction and output (and optionally input) to column "
            f"names, got keys {sorted(fields)}"
        )


def mapped_spec(
    name: str,
    fields: dict[str, str],
    *,
    hub_id: str = "",
    revision: str = "main",
    config: str | None = None,
    split: str = "train",
    licence: str = "unknown",
    llm_generated: bool | None = None,
) -> SourceSpec:
    """A SourceSpec whose required columns are the mapped ones (all str)."""
    check_fields(name, fields)
    convert = partial(
        to_records, name=name, fields=dict(fields), licence=licence, llm_generated=llm_generated
    )
    return SourceSpec(
        name=name,
        hub_id=hub_id,
        revision=revision,
        config=config,
        split=split,
        columns={c: str for c in fields.values()},
        licence=licence,
        llm_generated=llm_generated,
        to_records=convert,
    )
