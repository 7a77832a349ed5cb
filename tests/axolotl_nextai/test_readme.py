"""axolotl_nextai/README.md documents every plugin key with the default args.py gives it."""

import re
from pathlib import Path

import yaml

from axolotl_nextai.args import NextAIArgs

README = Path(__file__).resolve().parents[2] / "axolotl_nextai" / "README.md"


def test_every_key_is_in_the_table_with_its_default():
    rows = dict(re.findall(r"^\| `(nextai_\w+)` \| `([^`]*)` \|", README.read_text(), flags=re.MULTILINE))
    for key, field in NextAIArgs.model_fields.items():
        assert key in rows, f"{key} missing from {README}"
        assert yaml.safe_load(rows[key]) == field.default, key
