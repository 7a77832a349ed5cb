"""codegen: the paper's code-instruction set, cited as `skar02/codegen`.

- hub: `skar02/codegen` (revision not pinned here), split train; rows: ~4k
- columns: not published anywhere we could check, so the source is read through a field mapping
  (default: Alpaca's `instruction` / `input` / `output`); a mixture entry overrides it with `fields:`
- licence: unknown (the licence filter drops it under `commercial` and `research`); LLM-generated: unknown
- Table 1: codegen.
"""

from __future__ import annotations

from data_builders.sources.mapped import ALPACA_FIELDS, mapped_spec

HUB_ID = "skar02/codegen"


def spec(fields: dict[str, str] | None = None):
    return mapped_spec("codegen", fields or ALPACA_FIELDS, hub_id=HUB_ID)


SPEC = spec()
