"""The paper's HELM benchmarks from their original files into the rows lm-eval's tasks read: whole, or HELM's
50-item subsets.

The challenge scored MMLU (17 subjects), BBQ and TruthfulQA (multiple choice) on 50 instances each. The
original releases are files in three GitHub repositories; lm-eval's tasks read the hub datasets made from
them. This module turns the first into the second, so that `nextai-eval --data-dir` and decontamination
(`--decontaminate-dir`) run on real items offline:

- MMLU (hendrycks/test `data/{dev,test}/<subject>_{dev,test}.csv`, no header: question, A, B, C, D, answer
  letter) -> `mmlu_<subject>.jsonl` (`question, subject, choices, answer` as in `cais/mmlu`), and the dev
  CSV's five rows -> `mmlu_<subject>.dev.jsonl`, the few-shot split.
- BBQ (nyu-mll/BBQ `data/<Category>.jsonl`) -> `bbq.jsonl`, rows unchanged (`oskarvanderwal/bbq`'s columns),
  all categories given pooled, as HELM's `bbq:subject=all`.
- TruthfulQA (sylinrl/TruthfulQA `TruthfulQA.csv`, the generation set) -> `truthfulqa_mc1.jsonl`: the best
  answer first, then every listed incorrect answer, as `mc1_targets`. The hub's multiple-choice set was built
  from a separate file (`mc_task.json`) with its own answer lists; this keeps the same questions and the
  CSV's answers (4.0 incorrect per question on average), so its chance level is the mean of 1 / choices.

Rows are written in a seeded order (a subset: a seeded sample in sampled order), so that the first k rows of
any file (`nextai-eval --limit k`) are themselves a seeded random k.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

from data_builders.atomic import atomic_folder
from data_builders.errors import DataError
from data_builders.files import MISSING, file_problem, read_input
from data_builders.json_text import dumps, jsonl, loads

MMLU_PREFIX = "mmlu_"
LETTERS = "ABCD"


@dataclass
class Items:
    """Rows per task (and MMLU's dev rows), and the origin (file, sha256, rows) of each file read."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    dev: dict[str, list[dict]] = field(default_factory=dict)
    origins: dict[str, list[dict]] = field(default_factory=dict)


def _read(path: Path, origins: list[dict]) -> str:
    if file_problem(path) == MISSING:
        raise DataError(f"missing benchmark file: {path}")
    data = read_input(path)
    origins.append({"file": path.name, "sha256": hashlib.sha256(data).hexdigest()})
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8") from None


def mmlu_rows(path: Path, subject: str, origins: list[dict]) -> list[dict]:
    """One MMLU CSV (no header: question, A, B, C, D, answer letter) as `cais/mmlu` rows."""
    reader = csv.reader(io.StringIO(_read(path, origins), newline=""))
    rows = []
    for record in reader:
        if len(record) != 6 or record[5] not in LETTERS:
            raise DataError(
                f"{path}:{reader.line_num}: expected question, A, B, C, D and an answer letter "
                f"A-D; got {len(record)} fields"
            )
        rows.append(
            {
                "question": record[0],
                "subject": subject,
                "choices": record[1:5],
                "answer": LETTERS.index(record[5]),
            }
        )
    return rows


def bbq_rows(path: Path, origins: list[dict]) -> list[dict]:
    """One BBQ category file, rows as they are (the columns lm-eval's `bbq` reads are checked)."""
    rows = []
    for lineno, line in enumerate(_read(path, origins).splitlines(), start=1):
        if not line.strip():
            continue
        row = loads(line, str(path), lineno)
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object")
        missing = [k for k in ("context", "question", "ans0", "ans1", "ans2", "label") if k not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing field {missing[0]!r}")
        rows.append(row)
    return rows


def split_answers(cell: str) -> list[str]:
    return [answer.strip() for answer in cell.split(";") if answer.strip()]


def truthfulqa_rows(path: Path, origins: list[dict]) -> list[dict]:
    """TruthfulQA's generation CSV as mc1 rows: best answer (label 1) first, then each incorrect answer."""
    reader = csv.DictReader(io.StringIO(_read(path, origins), newline=""))
    rows = []
    for record in reader:
        missing = [
            k for k in ("Question", "Best Answer", "Incorrect Answers") if not (record.get(k) or "").strip()
        ]
        if missing:
            raise DataError(f"{path}:{reader.line_num}: empty or missing column {missing[0]!r}")
        choices = [record["Best Answer"].strip(), *split_answers(record["Incorrect Answers"])]
        rows.append(
            {
                "question": record["Question"],
                "category": record.get("Category", ""),
                "mc1_targets": {"choices": choices, "labels": [1] + [0] * (len(choices) - 1)},
            }
        )
    return rows


def read_items(
    tasks: list[str], mmlu_dir: Path | None, bbq_dir: Path | None, truthfulqa_csv: Path | None
) -> Items:
    """Every row of each task in `tasks` whose original is given (`mmlu_dir`: hendrycks/test's `data/`);
    a DataError names a task whose original was not given, or a bad file and line."""
    items = Items()
    for task in tasks:
        origins: list[dict] = []
        if task.startswith(MMLU_PREFIX) and mmlu_dir is not None:
            subject = task.removeprefix(MMLU_PREFIX)
            items.rows[task] = mmlu_rows(mmlu_dir / "test" / f"{subject}_test.csv", subject, origins)
            items.dev[task] = mmlu_rows(mmlu_dir / "dev" / f"{subject}_dev.csv", subject, origins)
        elif task == "bbq" and bbq_dir is not None:
            files = sorted(bbq_dir.glob("*.jsonl"))
            if not files:
                raise DataError(f"no BBQ category file (<Category>.jsonl) in {bbq_dir}")
            items.rows[task] = [row for path in files for row in bbq_rows(path, origins)]
        elif task == "truthfulqa_mc1" and truthfulqa_csv is not None:
            items.rows[task] = truthfulqa_rows(truthfulqa_csv, origins)
        else:
            raise DataError(
                f"no original given for benchmark {task} (--mmlu-dir, --bbq-dir or --truthfulqa-csv)"
            )
        items.origins[task] = origins
    return items


def sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded sample of `n` rows (all of them when n is None), in sampled order: every prefix is a seeded
    random sample too, so `--limit k` on the file scores k items drawn from all of it (BBQ's files come
    category by category)."""
    n = len(rows) if n is None else min(n, len(rows))
    return [rows[i] for i in random.Random(seed).sample(range(len(rows)), n)]


def write_items(items: Items, out: Path, per_task: int | None, seed: int, compress: bool = False) -> dict:
    """`out/<task>.jsonl[.gz]` (a seeded `per_task` sample, or all rows) and MMLU's `<task>.dev.jsonl`, then
    `out/manifest.json`, written as one set (`atomic_folder`); returns the manifest."""
    manifest = {"per_task": per_task, "seed": seed, "tasks": {}}
    with atomic_folder(out) as work:
        for task, rows in items.rows.items():
            chosen = sample(rows, per_task, seed)
            write_jsonl(work / f"{task}.jsonl", chosen, compress)
            manifest["tasks"][task] = {"rows": len(chosen), "of": len(rows), "origin": items.origins[task]}
            if task in items.dev:
                write_jsonl(work / f"{task}.dev.jsonl", items.dev[task], False)
                manifest["tasks"][task]["dev_rows"] = len(items.dev[task])
        (work / "manifest.json").write_text(dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def write_jsonl(path: Path, rows: list[dict], compress: bool) -> None:
    text = jsonl(rows).encode("utf-8")
    if compress:  # mtime 0: same rows, same bytes
        path = path.with_name(path.name + ".gz")
        text = gzip.compress(text, compresslevel=9, mtime=0)
    path.write_bytes(text)
