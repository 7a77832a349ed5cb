"""The real instruction rows vendored in `data_builders/real/rows/`, and how they were cut from their copies.

    python -m data_builders.real_rows --lima lima_from_llamafactory.jsonl \
        --multi-news multi_news_plus_train_10k.jsonl.gz --out data_builders/real/rows

- `lima.jsonl.gz`: LIMA's rows (as LLaMA-Factory converted them, `conversations` only) less the held-out ones.
- `multi_news.jsonl.gz`: the rows mixture v5's own seeded 10 % selection (Table 7) takes from the copy given,
  less none (the held-out rows come from the other 90 %).
- `heldout.jsonl`: rows no mixture built from these files can contain, in Alpaca form as the builders convert
  them (first turn of single-turn LIMA rows; Multi-News rows): a loss on them measures what fine-tuning did to
  real text the model never saw. Seeded choice, fixed before any training run.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import click

from data_builders.atomic import atomic_folder
from data_builders.boundary import Guarded
from data_builders.json_text import jsonl
from data_builders.mixing import Entry, seeded_sample, wanted_count
from data_builders.sources import lima, multi_news
from data_builders.sources.base import load, read_rows

SEED = 42  # the shipped mixtures' seed
HELDOUT_PER_SOURCE = 50


def heldout_indices(allowed: list[int], k: int, seed: int = SEED) -> set[int]:
    """A seeded `k` of the row indices `allowed`."""
    return set(random.Random(seed).sample(sorted(allowed), min(k, len(allowed))))


def gzip_jsonl(path: Path, rows: list[dict]) -> None:
    text = jsonl(rows).encode("utf-8")
    path.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))


def cut(lima_path: Path, multi_news_path: Path, out: Path, heldout: int = HELDOUT_PER_SOURCE) -> dict:
    """Write the three files (as one set) and return counts."""
    lima_rows, _ = read_rows(lima_path, lima.COLUMNS, lima.OPTIONAL)
    single = [i for i, row in enumerate(lima_rows) if len(row["conversations"]) == 2]
    lima_held = heldout_indices(single, heldout)

    news_rows, _ = read_rows(multi_news_path, multi_news.COLUMNS)
    records = load(multi_news.SPEC, multi_news_path).records
    v5_share = Entry(source="multi_news", percent=10)  # data_builders/mixtures/v5.yaml
    chosen = {r.row for r in seeded_sample(records, wanted_count(v5_share, len(records)), SEED, "multi_news")}
    news_held = heldout_indices([i for i in range(len(news_rows)) if i not in chosen], heldout)

    held = [r.to_json() for i in sorted(lima_held) for r in lima.to_records(lima_rows[i], i)]
    held += [r.to_json() for i in sorted(news_held) for r in multi_news.to_records(news_rows[i], i)]
    with atomic_folder(out) as work:
        gzip_jsonl(work / "lima.jsonl.gz", [row for i, row in enumerate(lima_rows) if i not in lima_held])
        gzip_jsonl(work / "multi_news.jsonl.gz", [row for i, row in enumerate(news_rows) if i in chosen])
        (work / "heldout.jsonl").write_text(jsonl(held))
    return {"lima": len(lima_rows) - len(lima_held), "multi_news": len(chosen), "heldout": len(held)}


@click.command(cls=Guarded)
@click.option(
    "--lima",
    "lima_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="LIMA rows with `conversations` (e.g. LLaMA-Factory's lima.json rebuilt as JSONL).",
)
@click.option(
    "--multi-news",
    "multi_news_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Multi-News rows with `document` and `summary` (.jsonl or .jsonl.gz).",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def main(lima_path: Path, multi_news_path: Path, out: Path) -> None:
    """Cut the vendored real rows (training pools + held-out rows) from local copies of LIMA and
    Multi-News."""
    counts = cut(lima_path, multi_news_path, out)
    click.echo(", ".join(f"{k}: {v} rows" for k, v in counts.items()) + f" -> {out}")


if __name__ == "__main__":
    main()
