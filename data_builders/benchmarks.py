"""The paper's HELM benchmarks as the texts a training row could have copied, from the hub or local files.

One benchmark per lm-eval task of the eval runner (`data_builders.paper_tasks.PAPER_TASKS`: `mmlu_<subject>`
for the 17 subjects, `truthfulqa_mc1`, `bbq`, `cnn_dailymail_abisee`). Rows come from the dataset and split
that lm-eval's own config of the task scores, or from `DIR/<task>.jsonl|.json|.parquet|.csv` in that dataset's
schema: the same files `nextai-eval --data-dir` reads. Every test item becomes one or two texts:

- MMLU: the question, and the question with its lettered choices (HELM's prompt shows them). A reworded copy
  of a question alone scored 0.81 against question + choices but 0.93 against the question, hence both.
- TruthfulQA: the question (lm-eval's own decontamination query), and the question with its mc1 choices.
- BBQ: context + question. Its answers are short names and "Can't be determined", and its 58k items make
  a second text per item the most expensive part of the step.
- CNN/DM: the article (MiniLM reads its first 256 word pieces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from data_builders.errors import DataError, RowError
from data_builders.paper_tasks import BY_NAME, PaperTask, builtin_config, scored_split
from data_builders.sources.base import checked_rows, find_source_file, read_file
from data_builders.sources.hub import hub_problem


def lettered(question: str, choices: list[str]) -> str:
    return question + "".join(f"\n{chr(65 + i)}. {c}" for i, c in enumerate(choices))


def mmlu_texts(row: dict) -> list[str]:
    return [row["question"], lettered(row["question"], row["choices"])]


def truthfulqa_texts(row: dict) -> list[str]:
    choices = row["mc1_targets"].get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ValueError("field 'mc1_targets.choices' must be a list of str")
    return [row["question"], lettered(row["question"], choices)]


@dataclass(frozen=True)
class Benchmark:
    columns: dict[str, type]  # the columns the texts read, checked on every row
    texts: Callable[[dict], list[str]]


BY_COLUMN = {  # keyed by the results column each paper task feeds
    "MMLU": Benchmark({"question": str, "choices": list}, mmlu_texts),
    "TruthfulQA": Benchmark({"question": str, "mc1_targets": dict}, truthfulqa_texts),
    "BBQ": Benchmark({"context": str, "question": str}, lambda row: [f"{row['context']}\n{row['question']}"]),
    "CNN/DM ROUGE-2": Benchmark({"article": str}, lambda row: [row["article"]]),
}
BENCHMARKS: dict[str, PaperTask] = BY_NAME


@dataclass
class BenchmarkTexts:
    """Every text to compare against, flat, with the benchmark and item (`<task>:<row>`) each came from."""

    texts: list[str] = field(default_factory=list)
    benchmark: list[str] = field(default_factory=list)
    item: list[str] = field(default_factory=list)
    stats: dict[str, dict] = field(default_factory=dict)  # per benchmark: origin, items, texts


def check_names(names: list[str]) -> list[str]:
    """`names` unchanged, or a DataError naming the unknown ones and the known ones."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise DataError(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    if not names:
        raise DataError("no benchmark to decontaminate against")
    return names


def iter_benchmark_hub_rows(origin: dict) -> Iterator[tuple[str, dict]]:
    """The rows of a `hub_origin`: the dataset, subset and split lm-eval scores for its task."""
    from datasets import load_dataset

    hub_id, subset, split = origin["hub_id"], origin["config"], origin["split"]
    try:
        rows = load_dataset(hub_id, subset, split=split)
    except Exception as err:  # offline, gated, unknown id, a loading script: sources/hub.py says which
        problem = hub_problem(err, hub_id, config=subset)
        if problem is None:
            raise
        raise DataError(
            f"cannot load benchmark {hub_id}/{subset}:{split} from the hub ({problem}); "
            "give local files with --decontaminate-dir (build) or --benchmarks-dir"
        ) from None
    for i, row in enumerate(rows):
        yield f"{hub_id}/{subset}:{split}: row {i}", row


def hub_origin(task: PaperTask) -> dict:
    """Where lm-eval's config of `task` reads its rows: dataset, subset and test (else validation) split."""
    config = builtin_config(task)
    return {
        "hub_id": config["dataset_path"],
        "config": config.get("dataset_name"),
        "split": scored_split(config),
    }


def benchmark_files(names: list[str], benchmarks_dir: Path | None) -> list[Path]:
    """The local file of each benchmark in `benchmarks_dir` (none without it: the hub); a missing one
    raises."""
    if benchmarks_dir is None:
        return []
    return [find_source_file(name, benchmarks_dir, kind="benchmark") for name in check_names(names)]


def load_benchmarks(names: list[str], benchmarks_dir: Path | None = None) -> BenchmarkTexts:
    """The texts of every test item of `names`, from `benchmarks_dir` (or the hub when None).

    Any bad row stops the load, naming file:line and the field: a skipped test item would leave its copies in.
    """
    out = BenchmarkTexts()
    for name in check_names(names):
        task, spec = BENCHMARKS[name], BY_COLUMN[BENCHMARKS[name].column]
        if benchmarks_dir is None:
            origin = hub_origin(task)
            rows = iter_benchmark_hub_rows(origin)
        else:
            path = find_source_file(name, benchmarks_dir, kind="benchmark")
            rows, origin = read_file(path)
        items = texts = 0
        for index, (where, row) in enumerate(checked_rows(rows, spec.columns)):
            try:
                got = spec.texts(row)
            except ValueError as err:
                raise RowError(f"{where}: {err}") from None
            out.texts.extend(got)
            out.benchmark.extend([name] * len(got))
            out.item.extend([f"{name}:{index}"] * len(got))
            items, texts = items + 1, texts + len(got)
        if not items:
            raise DataError(f"{name}: no test items")
        out.stats[name] = {"origin": origin, "items": items, "texts": texts}
    return out
