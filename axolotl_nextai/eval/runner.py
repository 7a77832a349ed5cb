"""Run the paper's subset through lm-evaluation-harness on a loaded base model (+ adapter): the lm-eval glue.

`prepare` checks and reads what can be checked before the model loads (tasks.py, heldout.py); `run` indexes
the tasks, loads the model and scores it, the base first with `--compare-base`; the numbers become a row in
stats.py and a table in tables.py, and writers.py writes them. These are lm-eval numbers: its prompts, shot
counts and metrics differ from HELM's, so they track a model across our runs but are not comparable with the
challenge's leaderboard or the paper's Table 8.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from axolotl_nextai.eval.errors import EvalInputError
from axolotl_nextai.eval.heldout import check_heldout_cutoff, heldout_loss, read_heldout
from axolotl_nextai.eval.stats import compare, table_row
from axolotl_nextai.eval.tables import source_note
from axolotl_nextai.eval.tasks import (
    ALL,
    LOCAL_PREFIX,
    check_local_files,
    select_tasks,
    task_limit,
    task_yamls,
)
from data_builders.errors import did_you_mean
from data_builders.paper_tasks import BY_NAME


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """What to score and how (`nextai-eval`'s options; where the results go is the writer's)."""

    base_model: str  # folder or hub id
    adapter: str | None = None  # LoRA adapter folder; None scores the base
    compare_base: bool = False  # also score the base, adapter switched off, and add the paired change
    data_dir: Path | None = None  # local <task>.jsonl files; None: the paper subset from the hub
    extra_tasks: tuple[str, ...] = ()  # more lm-eval task names (`--tasks`)
    include_paths: tuple[Path, ...] = ()  # folders of custom task YAMLs
    limits: dict[str, int | None] = field(default_factory=lambda: {ALL: 50})  # tasks.parse_limits
    num_fewshot: int | None = None  # None: each task's own
    batch_size: int = 1
    heldout: Path | None = None  # Alpaca JSONL never trained on: its loss per response token
    heldout_cutoff: int = 1024  # the recipe's sequence_len
    label: str | None = None  # the row's label; None: the adapter, else the base model
    load_in_4bit: bool | None = None  # None: on with a CUDA GPU


@dataclass(frozen=True)
class Prepared:
    """What the checks before the model loads read: the tasks to run, the local task configs (YAMLs to write),
    the held-out rows."""

    tasks: list[str]
    configs: list[dict]
    heldout_rows: list[dict] | None


@dataclass(frozen=True)
class Scored:
    """The rows (label, `stats.table_row`, the model asked for last), lm-eval's own results of that model, the
    paired change (with `--compare-base`) and the line saying where the numbers come from."""

    rows: list[tuple[str, dict]]
    results: dict
    change: dict | None
    note: str


def prepare(options: EvalOptions) -> Prepared:
    """Tasks, local files and held-out rows, checked: an EvalInputError names what cannot run, before any
    model loads."""
    tasks, configs = select_tasks(options.data_dir, list(options.extra_tasks), options.num_fewshot)
    heldout_rows = read_heldout(options.heldout) if options.heldout else None
    if heldout_rows:
        check_heldout_cutoff(options.base_model, heldout_rows, options.heldout_cutoff)
    check_local_files(configs)
    return Prepared(tasks=tasks, configs=configs, heldout_rows=heldout_rows)


def lm_eval_version() -> str:
    import lm_eval

    return lm_eval.__version__


@contextmanager
def task_manager(prepared: Prepared, include_paths: tuple[Path, ...] = ()) -> Iterator:
    """lm-eval's index of the local task configs (as YAMLs in a temporary folder, which lm-eval reads while it
    runs), the `include_paths` and, when a task is not local, the ~3,000 tasks lm-eval ships (~15 s on 2 cores
    to index: built once, before the model loads, to check task names and then to run them)."""
    from lm_eval.tasks import TaskManager

    builtin = any(not name.startswith(LOCAL_PREFIX) for name in prepared.tasks)
    with tempfile.TemporaryDirectory(prefix="nextai-eval-tasks-") as staging:
        for path, text in task_yamls(prepared.configs, Path(staging)).items():
            path.write_text(text)
        yield TaskManager(include_path=[staging, *map(str, include_paths)], include_defaults=builtin)


def check_task_names(manager, names: list[str]) -> None:
    """EvalInputError naming each of `names` that `manager` does not know, with the nearest known name."""
    known = set(manager.all_tasks)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = [name + did_you_mean(name, known) for name in unknown]
        raise EvalInputError(f"--tasks: unknown lm-eval task {', '.join(hints)}")


def evaluate(model, tokenizer, manager, options: EvalOptions, tasks: list[str]) -> dict:
    """`lm_eval.simple_evaluate` on an already loaded model (base + adapter), once per distinct limit; the
    results merged: `results`, `n-samples`, and `item_scores` (per paper task, each item's score by doc
    id)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=options.batch_size)
    groups: dict[int | None, list[str]] = {}
    for name in tasks:
        groups.setdefault(task_limit(name, options.limits), []).append(name)
    merged: dict = {"results": {}, "n-samples": {}, "item_scores": {}}
    for limit, names in groups.items():
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=names,
            limit=limit,
            num_fewshot=options.num_fewshot,
            task_manager=manager,
            log_samples=True,
            bootstrap_iters=0,
        )
        merged["results"].update(out["results"])
        merged["n-samples"].update(out["n-samples"])
        for name, samples in out["samples"].items():
            task = BY_NAME.get(name.removeprefix(LOCAL_PREFIX))
            if task is not None:
                ordered = sorted(samples, key=lambda s: s["doc_id"])
                merged["item_scores"][name] = [float(s[task.metric]) for s in ordered]
    return merged


def score(model, tokenizer, manager, options: EvalOptions, prepared: Prepared) -> tuple[dict, dict]:
    """(row, lm-eval results) for the model as it is: `table_row`, plus the held-out loss when rows are
    given."""
    results = evaluate(model, tokenizer, manager, options, prepared.tasks)
    row = table_row(results)
    row["item_scores"] = results["item_scores"]
    if prepared.heldout_rows:
        row["heldout"] = heldout_loss(model, tokenizer, prepared.heldout_rows, options.heldout_cutoff)
    return row, results


def run(options: EvalOptions, prepared: Prepared) -> Scored:
    """Index the tasks, check `--tasks` names, load base + adapter, score: the base first (adapter switched
    off, same process, same items) with `compare_base`, then the model asked for."""
    from axolotl_nextai.models.checkpoint import load_base_and_adapter

    with task_manager(prepared, options.include_paths) as manager:
        check_task_names(manager, list(options.extra_tasks))
        model, tokenizer = load_base_and_adapter(options.base_model, options.adapter, options.load_in_4bit)
        rows = []
        if options.compare_base:
            with model.disable_adapter():
                base_row, _ = score(model, tokenizer, manager, options, prepared)
            rows.append((f"{Path(options.base_model).name} (base)", base_row))
        row, results = score(model, tokenizer, manager, options, prepared)
    rows.append((options.label or options.adapter or options.base_model, row))
    change = compare(rows[0][1], row) if options.compare_base else None
    return Scored(
        rows=rows, results=results, change=change, note=source_note(lm_eval_version(), options.limits)
    )
