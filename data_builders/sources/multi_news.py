"""Multi-News: news articles (2-10 per row) and a human-written summary of them.

- hub: `alexfabbri/multi_news` (revision not pinned: none could be checked from here; the manifest records the
  commit read), served by a loading script (multi_news.py), which datasets >= 4 no longer runs: read from the
  script's own data files, `data/train.src.cleaned` (one row's articles a line, joined by ` ||||| `, newlines
  written `NEWLINE_CHAR`) and `data/train.tgt` (its summary, the same line), as the script pairs them
- columns of a local copy: `document` (articles joined by `|||||`), `summary` (starts with "– ") (both str)
- licence: non-commercial research/education use; LLM-generated: no; rows: 44,972 train
- Table 1: Multi-News.

Each row becomes one summarisation instruction: the articles, split at `|||||` and numbered, are the input;
the summary, without its leading dash, is the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path, PurePosixPath

from data_builders.errors import DataError, RowError
from data_builders.records import Record
from data_builders.sources.base import SourceSpec

HUB_ID = "alexfabbri/multi_news"
HUB_FILES = ("data/train.src.cleaned", "data/train.tgt")
COLUMNS = {"document": str, "summary": str}
LICENCE = "non-commercial"
INSTRUCTION = "Summarize the following news articles in one paragraph."
SEPARATOR = "|||||"


def line_pairs(files: list[tuple[PurePosixPath, Path]]) -> Iterator[tuple[str, dict | Exception]]:
    """Rows from the Hub's line-aligned source and target files (split at "\\n" only, as the script's file
    iteration does), `NEWLINE_CHAR` back to a newline; files of different lengths are a DataError."""
    (src_label, src), (tgt_label, tgt) = files
    with src.open("rb") as documents, tgt.open("rb") as summaries:
        for lineno, (document, summary) in enumerate(zip_longest(documents, summaries), start=1):
            if document is None or summary is None:
                longer = src_label if summary is None else tgt_label
                raise DataError(
                    f"{longer} has more lines than its pair: not one summary a row (line {lineno})"
                )
            where = f"{src_label}:{lineno}"
            try:
                yield (
                    where,
                    {
                        "document": document.decode("utf-8").strip().replace("NEWLINE_CHAR", "\n"),
                        "summary": summary.decode("utf-8").strip(),
                    },
                )
            except UnicodeDecodeError as err:
                yield where, RowError(f"{where}: not UTF-8 ({err.reason})")


def to_records(row: dict, index: int) -> list[Record]:
    articles = [a.strip() for a in row["document"].split(SEPARATOR) if a.strip()]
    text = "\n\n".join(f"Article {i}:\n{a}" for i, a in enumerate(articles, start=1))
    summary = row["summary"].strip().removeprefix("–").strip()
    return [
        Record(
            instruction=INSTRUCTION,
            input=text,
            output=summary,
            source="multi_news",
            row=index,
            licence=LICENCE,
            llm_generated=False,
        )
    ]


SPEC = SourceSpec(
    name="multi_news",
    hub_id=HUB_ID,
    revision="main",
    split="train",
    columns=COLUMNS,
    licence=LICENCE,
    llm_generated=False,
    to_records=to_records,
    hub_files=HUB_FILES,
    hub_rows=line_pairs,
)
