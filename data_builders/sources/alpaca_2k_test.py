"""alpaca_2k_test: a 2,000-row slice of Stanford Alpaca, already in Alpaca form.

- hub: `mhenrichsen/alpaca_2k_test` @ d05c1cb5 (the upload of alpaca_2000.parquet), split train
- columns: `instruction`, `input`, `output` (all str)
- licence: the card says Apache-2.0, but the Alpaca data it copies is CC BY-NC 4.0: recorded as CC-BY-NC-4.0
- LLM-generated: yes (text-davinci-003); rows: 2,000
- Table 1: alpaca_2k_test.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "mhenrichsen/alpaca_2k_test"
REVISION = "d05c1cb585e462b16532a44314aa4859cb7450c6"
COLUMNS = {"instruction": str, "input": str, "output": str}
LICENCE = "CC-BY-NC-4.0"


def to_records(row: dict, index: int) -> list[Record]:
    return [Record(row["instruction"], row["input"], row["output"], "alpaca_2k_test", index, LICENCE, True)]


SPEC = SourceSpec("alpaca_2k_test", HUB_ID, REVISION, "train", COLUMNS, LICENCE, True, to_records)
