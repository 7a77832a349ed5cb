"""Multi-News: news articles (2-10 per row) and a human-written summary of them.

- hub: `alexfabbri/multi_news` (revision not pinned here; if the hub still serves it through a loading
  script, datasets >= 4 will not run it: use a local copy), split train
- columns: `document` (articles joined by `|||||`), `summary` (starts with "– ") (both str)
- licence: non-commercial research/education use; LLM-generated: no; rows: 44,972 train
- Table 1: Multi-News.

Each row becomes one summarisation instruction: the articles, split at `|||||` and numbered, are the input;
the summary, without its leading dash, is the output.
"""

from __future__ import annotations

from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "alexfabbri/multi_news"
COLUMNS = {"document": str, "summary": str}
LICENCE = "non-commercial"
INSTRUCTION = "Summarize the following news articles in one paragraph."
SEPARATOR = "|||||"


def to_records(row: dict, index: int) -> list[Record]:
    articles = [a.strip() for a in row["document"].split(SEPARATOR) if a.strip()]
    text = "\n\n".join(f"Article {i}:\n{a}" for i, a in enumerate(articles, start=1))
    summary = row["summary"].strip().removeprefix("–").strip()
    return [Record(instruction=INSTRUCTION, input=text, output=summary, source="multi_news", row=index,
                   licence=LICENCE, llm_generated=False)]


SPEC = SourceSpec(name="multi_news", hub_id=HUB_ID, revision="main", split="train", columns=COLUMNS,
                  licence=LICENCE, llm_generated=False, to_records=to_records)
