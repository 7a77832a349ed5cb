"""The statistics of nextai-eval's table: pure functions of lm-eval's numbers, no model and no lm-eval needed.

Every accuracy carries a 95 % interval (normal approximation over the items scored, with Agresti-Coull's
standard error; MMLU's column is the mean of its subjects, HELM's way, and its interval that of the mean).
Scored beside its base (`--compare-base`), a fine-tuned row gets a change row whose interval is paired: the
same items, each scored by both models, so what the adapter moved is told apart from which items happened to
be drawn. A small model sits near chance on these benchmarks: an interval that spans zero says nothing moved.
"""

from __future__ import annotations

import math

from axolotl_nextai.eval.tasks import LOCAL_PREFIX
from data_builders.paper_tasks import BY_NAME, PAPER_TASKS

COLUMNS = tuple(dict.fromkeys(task.column for task in PAPER_TASKS))
Z95 = 1.959964


def proportion_se(p: float, n: int) -> float:
    """Standard error of an accuracy `p` over `n` items, Agresti-Coull's (two successes and two failures
    added): unlike the plain p(1 - p) / n it does not vanish at 0 or 100 %, where a handful of items often
    lands."""
    if not n:
        return math.nan
    adjusted = (p * n + 2) / (n + 4)
    return math.sqrt(adjusted * (1 - adjusted) / (n + 4))


def mean_interval(estimates: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Mean of k estimates and its 95 % interval, each given with its standard error (independent)."""
    k = len(estimates)
    value = sum(v for v, _ in estimates) / k
    se = math.sqrt(sum(s * s for _, s in estimates)) / k
    return value, value - Z95 * se, value + Z95 * se


def table_row(results: dict) -> dict:
    """Per column: score (MMLU: the mean over its subjects, as HELM's column), 95 % interval, tasks and items;
    per task: score and items scored."""
    per_column: dict[str, list[tuple[float, float]]] = {column: [] for column in COLUMNS}
    items = {column: 0 for column in COLUMNS}
    tasks: dict[str, float] = {}
    n_samples = {}
    for name, scores in results["results"].items():
        task = BY_NAME.get(name.removeprefix(LOCAL_PREFIX))
        if task is None:
            continue
        value, n = scores[f"{task.metric},none"], results["n-samples"][name]["effective"]
        tasks[name], n_samples[name] = value, n
        se = proportion_se(value, n) if task.metric == "acc" else math.nan
        per_column[task.column].append((value, se))
        items[task.column] += n
    row = {
        "scores": {},
        "intervals": {},
        "n_tasks": {},
        "items": items,
        "tasks": tasks,
        "n_samples": n_samples,
    }
    for column, estimates in per_column.items():
        row["n_tasks"][column] = len(estimates)
        if not estimates:
            row["scores"][column], row["intervals"][column] = None, None
            continue
        value, low, high = mean_interval(estimates)
        row["scores"][column] = value
        row["intervals"][column] = None if math.isnan(low) else [max(low, 0.0), min(high, 1.0)]
    return row


def paired_change(base: dict[str, list[float]], tuned: dict[str, list[float]]) -> dict:
    """Per column: the mean change of the fine-tuned scores over the base's on the same items, with a paired
    95 % interval (per task: mean and standard error of the per-item differences; the column: their mean).
    Raises ValueError when the two did not score the same tasks and items: both runs score one task list in
    one process, so a mismatch is a bug, not something a user can cause."""
    if base.keys() != tuned.keys() or any(len(base[t]) != len(tuned[t]) for t in base):
        raise ValueError("the base and fine-tuned runs scored different tasks or items; cannot pair them")
    per_column: dict[str, list[tuple[float, float]]] = {}
    changed: dict[str, int] = {}
    for name, base_scores in base.items():
        diffs = [t - b for b, t in zip(base_scores, tuned[name], strict=True)]
        n = len(diffs)
        d = sum(diffs) / n
        var = sum((x - d) ** 2 for x in diffs) / (n - 1) if n > 1 else math.nan
        column = BY_NAME[name.removeprefix(LOCAL_PREFIX)].column
        per_column.setdefault(column, []).append((d, math.sqrt(var / n)))
        changed[column] = changed.get(column, 0) + sum(1 for x in diffs if x)
    change = {}
    for column, estimates in per_column.items():
        value, low, high = mean_interval(estimates)
        # no item changed: the spread of the differences is zero, which bounds nothing
        interval = None if math.isnan(low) or not changed[column] else [low, high]
        change[column] = {"change": value, "interval": interval, "items_changed": changed[column]}
    return change


def heldout_change(base: dict, tuned: dict) -> dict | None:
    """Fine-tuned minus base held-out loss, with a paired 95 % interval over the rows' own mean losses."""
    diffs = [t - b for b, t in zip(base["per_row"], tuned["per_row"], strict=True)]
    n = len(diffs)
    if not n:
        return None
    d = sum(diffs) / n
    se = math.sqrt(sum((x - d) ** 2 for x in diffs) / (n - 1) / n) if n > 1 else math.nan
    return {
        "change": tuned["loss"] - base["loss"],
        "per_row_mean_change": d,
        "interval": None if math.isnan(se) else [d - Z95 * se, d + Z95 * se],
    }


def compare(base_row: dict, tuned_row: dict) -> dict:
    """The change row: paired per column, and for the held-out loss when both have one."""
    change = {"columns": paired_change(base_row["item_scores"], tuned_row["item_scores"])}
    if base_row.get("heldout") and tuned_row.get("heldout"):
        change["heldout"] = heldout_change(base_row["heldout"], tuned_row["heldout"])
    return change
