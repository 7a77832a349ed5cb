"""The READMEs name what the code has: every plugin key with the default args.py gives it, and every lever of
the table with its hook, its stance on several processes and its module."""

import re
from pathlib import Path

import yaml

from axolotl_nextai.args import NextAIArgs
from axolotl_nextai.levers import LEVERS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "axolotl_nextai" / "README.md"


def section(path: Path, heading: str) -> str:
    return path.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_every_key_is_in_the_table_with_its_default():
    row = r"^\| `(nextai_\w+)` \| `([^`]*)` \|"
    rows = dict(re.findall(row, section(README, "Keys"), flags=re.MULTILINE))
    for key, field in NextAIArgs.model_fields.items():
        assert key in rows, f"{key} missing from {README}"
        assert yaml.safe_load(rows[key]) == field.default, key


def test_the_table_of_levers_is_the_code_s():
    row = r"^\| `(nextai_\w+)` \| `(\w+)` \| (\w+) \| `(levers/\w+\.py)` \|$"
    rows = re.findall(row, section(README, "Levers"), flags=re.MULTILINE)
    code = [
        (
            lever.key,
            lever.hook,
            "tested" if lever.distributed else "refused",
            f"levers/{type(lever).__module__.rsplit('.', 1)[-1]}.py",
        )
        for lever in LEVERS
    ]
    assert rows == code


def test_the_top_readme_names_every_key():
    named = set(re.findall(r"`(nextai_\w+)`", section(ROOT / "README.md", "Plugin keys")))
    assert named == set(NextAIArgs.model_fields)
