"""Mixture v5's six source repositories as the Hub publishes them, holding the shipped sample's rows (real
schema, hand-written text), for hub_server.HubServer. Each layout says where it comes from.

Commit shas are the pinned ones where a source pins one; others (and "newer" heads) are made up here, which is
what a pin guards against: each repository whose source pins a commit also has a newer `main` with one more
row, so a build that read `main` instead of the pin would show it.
"""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from hub_server import Repo

from data_builders.sources import dolly, faithdial, open_platypus, sample_dir

GRANTED_TOKEN = "hf_granted_lima_access"  # the token of a user who accepted LIMA's terms
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.json filter=lfs diff=lfs merge=lfs -text\n"


def sample(name: str) -> list[dict]:
    return [json.loads(line) for line in (sample_dir() / f"{name}.jsonl").read_text().splitlines()]


def made_up_sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def parquet(rows: list[dict], columns: list[str]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), buffer)
    return buffer.getvalue()


def card(front_matter: str, title: str) -> bytes:
    return f"---\n{front_matter.strip()}\n---\n# {title}\n".encode()


def pinned_and_newer(repo_id: str, pin: str, files, rows: list[dict]) -> Repo:
    """A repository whose `pin` holds `files(rows)` and whose `main` is a later commit with one more row."""
    newer = made_up_sha(f"{repo_id} newer")
    return Repo(repo_id, {pin: files(rows), newer: files(rows + rows[:1])}, {"main": newer})


def dolly_repo() -> Repo:
    """databricks/databricks-dolly-15k @ b122d1b5 ("Add dataset"): databricks-dolly-15k.jsonl at the root, no
    `configs:` in the card, so `datasets` infers one train split from the file (the commit page lists the
    file; its card's license is cc-by-sa-3.0)."""
    return pinned_and_newer(
        dolly.HUB_ID,
        dolly.REVISION,
        lambda rows: {
            ".gitattributes": GITATTRIBUTES,
            "README.md": card("license: cc-by-sa-3.0\nlanguage:\n- en", "databricks-dolly-15k"),
            "databricks-dolly-15k.jsonl": jsonl(rows),
        },
        sample("dolly"),
    )


def platypus_repo() -> Repo:
    """garage-bAInd/Open-Platypus @ 37141edb: data/train-00000-of-00001-4fe2df04669d1669.parquet (columns
    input, output, instruction, data_source, in that order) and a card whose `configs:` maps split train to
    data/train-* (the tree at that commit; the card's YAML as push_to_hub wrote it)."""
    front = """configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
dataset_info:
  features:
  - name: input
    dtype: string
  - name: output
    dtype: string
  - name: instruction
    dtype: string
  - name: data_source
    dtype: string"""
    return pinned_and_newer(
        open_platypus.HUB_ID,
        open_platypus.REVISION,
        lambda rows: {
            ".gitattributes": GITATTRIBUTES,
            "README.md": card(front, "Open-Platypus"),
            "data/train-00000-of-00001-4fe2df04669d1669.parquet": parquet(
                rows, ["input", "output", "instruction", "data_source"]
            ),
        },
        sample("open_platypus"),
    )


def faithdial_repo() -> Repo:
    """McGill-NLP/FaithDial @ 7a414e80 (main): the loading script FaithDial.py beside data/train.json,
    valid.json and test.json, each a JSON array of dialogues {"utterances": [{history, speaker, knowledge,
    original_response, response, BEGIN, VRM}, ...]} (the dataset card's "Data Instance"; the file names as
    downstream loaders fetch them from resolve/main/data/)."""
    dialogues: dict[int, list[dict]] = {}
    for turn in sample("faithdial"):
        fields = {k: v for k, v in turn.items() if k != "dialog_idx"}
        dialogues.setdefault(turn["dialog_idx"] // 2, []).append({"speaker": "Wizard", **fields})
    data = [{"utterances": u} for _, u in sorted(dialogues.items())]

    def files(rows):
        return {
            ".gitattributes": GITATTRIBUTES,
            "README.md": card("license:\n- mit", "FaithDial"),
            "FaithDial.py": b"# the dataset's loading script (datasets < 4 ran it)\n",
            "data/train.json": json.dumps(rows).encode(),
            "data/valid.json": json.dumps(rows[:1]).encode(),
            "data/test.json": json.dumps(rows[:1]).encode(),
        }

    return pinned_and_newer(faithdial.HUB_ID, faithdial.REVISION, files, data)


def multi_news_repo() -> Repo:
    """alexfabbri/multi_news (main): the loading script multi_news.py beside data/{train,val,test}.src.cleaned
    (a row's articles on one line, joined by " ||||| ", newlines written NEWLINE_CHAR) and data/*.tgt (its
    summary, "– ..."), line-aligned (TFDS' multi_news builder and its checksums.tsv read the same six
    files)."""
    rows = sample("multi_news")
    src = "".join(r["document"].replace("\n", "NEWLINE_CHAR") + "\n" for r in rows).encode()
    tgt = "".join(r["summary"] + "\n" for r in rows).encode()
    head = made_up_sha("alexfabbri/multi_news main")
    return Repo(
        "alexfabbri/multi_news",
        {
            head: {
                ".gitattributes": GITATTRIBUTES,
                "README.md": card("license:\n- other", "Multi-News"),
                "multi_news.py": b"# the dataset's loading script (datasets < 4 ran it)\n",
                "data/train.src.cleaned": src,
                "data/train.tgt": tgt,
                "data/val.src.cleaned": src[: src.index(b"\n") + 1],
                "data/val.tgt": tgt[: tgt.index(b"\n") + 1],
            }
        },
        {"main": head},
    )


def lima_repo() -> Repo:
    """GAIR/lima (main), gated: the loading script lima.py beside train.jsonl ({"conversations": [...],
    "source"}) and test.jsonl (code that reads it downloads train.jsonl with hf_hub_download)."""
    rows = sample("lima")
    head = made_up_sha("GAIR/lima main")
    return Repo(
        "GAIR/lima",
        {
            head: {
                ".gitattributes": GITATTRIBUTES,
                "README.md": card("license: other\nextra_gated_prompt: terms", "LIMA"),
                "lima.py": b"# the dataset's loading script (datasets < 4 ran it)\n",
                "train.jsonl": jsonl(rows),
                "test.jsonl": jsonl([{"conversations": rows[0]["conversations"][:1], "source": "test"}]),
            }
        },
        {"main": head},
        gated=True,
        granted_tokens={GRANTED_TOKEN},
    )


def codegen_repo() -> Repo:
    """skar02/codegen (main): its card publishes no schema or layout, so it is served as push_to_hub writes a
    dataset (data/train-00000-of-00001.parquet under a `configs:` card) with Alpaca's columns, the default
    field mapping of sources/codegen.py."""
    front = "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*"
    head = made_up_sha("skar02/codegen main")
    return Repo(
        "skar02/codegen",
        {
            head: {
                ".gitattributes": GITATTRIBUTES,
                "README.md": card(front, "codegen"),
                "data/train-00000-of-00001.parquet": parquet(
                    sample("codegen"), ["instruction", "input", "output"]
                ),
            }
        },
        {"main": head},
    )


def v5_repos() -> list[Repo]:
    return [dolly_repo(), platypus_repo(), faithdial_repo(), multi_news_repo(), lima_repo(), codegen_repo()]
