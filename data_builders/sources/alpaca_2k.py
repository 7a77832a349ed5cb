"""alpaca_2k_test (this module is alpaca_2k.py: a name ending in _test is a test file to pytest): a 2,000-row
slice of Stanford Alpaca, already in Alpaca form.

- hub: `mhenrichsen/alpaca_2k_test` @ d05c1cb5 (the upload of alpaca_2000.parquet), split train
- columns: `instruction`, `input`, `output` (all str)
- licence: the card says Apache-2.0, but the Alpaca data it copies is CC BY-NC 4.0: recorded as CC-BY-NC-4.0
- LLM-generated: yes (text-davinci-003); rows: 2,000
- Table 1: alpaca_2k_test.
"""

from __future__ import annotations

from data_builders.sources.mapped import ALPACA_FIELDS, mapped_spec

HUB_ID = "mhenrichsen/alpaca_2k_test"
REVISION = "d05c1cb585e462b16532a44314aa4859cb7450c6"
LICENCE = "CC-BY-NC-4.0"

SPEC = mapped_spec(
    "alpaca_2k_test",
    ALPACA_FIELDS,
    hub_id=HUB_ID,
    revision=REVISION,
    split="train",
    licence=LICENCE,
    llm_generated=True,
)
