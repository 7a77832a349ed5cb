"""LIMA: 1,000 curated prompts with carefully written answers (Stack Exchange, wikiHow, Reddit, authors).

- hub: `GAIR/lima`, gated (accept its terms on the Hub and log in, or use a local copy), served by a loading
  script (lima.py), which datasets >= 4 no longer runs: read from the script's own data file, `train.jsonl`
  (revision not pinned: none could be checked from here; the manifest records the commit read)
- columns: `conversations` (list of str, alternating user/assistant, mostly 2), `source` (str; optional:
  copies such as LLaMA-Factory's, whose rows `data_builders/real/rows/lima.jsonl.gz` holds, drop it)
- licence: CC BY-NC-SA (stricter for some upstream sources): recorded as CC-BY-NC-SA-4.0
- LLM-generated: no; rows: 1,030 train
- Table 1: LIMA.

Conversion: one record per (user, assistant) pair, conversations[i], [i+1]. The first pair has no input;
a later pair carries the earlier turns as its input ("User: ..." / "Assistant: ..." lines), so the record
stands alone. A trailing user turn with no answer is dropped.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "GAIR/lima"
HUB_FILES = ("train.jsonl",)
COLUMNS = {"conversations": list}
OPTIONAL = {"source": str}
LICENCE = "CC-BY-NC-SA-4.0"


def transcript(turns: list[str]) -> str:
    """Earlier turns as context, labelled by speaker (user first)."""
    return "\n\n".join(f"{'User' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


def to_records(row: dict, index: int) -> list[Record]:
    turns = row["conversations"]
    if len(turns) < 2:
        raise ValueError("LIMA conversation has no assistant turn")
    return [
        Record(
            instruction=turns[i],
            input=transcript(turns[:i]),
            output=turns[i + 1],
            source="lima",
            row=index,
            licence=LICENCE,
            llm_generated=False,
            sub_source=row.get("source", ""),
            turn=i // 2,
        )
        for i in range(0, len(turns) - 1, 2)
    ]


SPEC = SourceSpec(
    name="lima",
    hub_id=HUB_ID,
    revision="main",
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
    optional=OPTIONAL,
    hub_files=HUB_FILES,
)
