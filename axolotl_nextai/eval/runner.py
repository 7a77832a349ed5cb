"""Run the paper's subset through lm-evaluation-harness and shape the scores like the paper's HELM table.

These are lm-eval numbers: its prompts, shot counts and metrics differ from HELM's, so they track a model
across our runs but are not comparable with the challenge's leaderboard or the paper's Table 8.

Every accuracy carries a 95 % interval (normal approximation over the items scored, with Agresti-Coull's standard
error; MMLU's column is the mean of its subjects, HELM's way, and its interval that of the mean). Scored beside its base (`--compare-base`), a
fine-tuned row gets a change row whose interval is paired: the same items, each scored by both models, so
what the adapter moved is told apart from which items happened to be drawn. A small model sits near chance
on these benchmarks: an interval that spans zero says nothing moved.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from axolotl_nextai.eval.tasks import LOCAL_PREFIX, local_task_configs, task_yamls
from data_builders.atomic import write_set
from data_builders.errors import did_you_mean
from data_builders.json_text import dumps, finite_or_null
from data_builders.paper_tasks import BY_NAME, PAPER_TASKS

COLUMNS = tuple(dict.fromkeys(task.column for task in PAPER_TASKS))
# Table 8 columns only HELM computes (CNN/DM bias metrics); shown as such, never filled in.
HELM_ONLY = ("CNN/DM stereotypes (race)", "CNN/DM stereotypes (gender)",
             "CNN/DM representation (race)", "CNN/DM representation (gender)")
SOURCE_NOTE = ("lm-evaluation-harness {version} scores (not HELM's: prompts, shots and metrics differ), "
               "{limit}; 95 % intervals: normal approximation, Agresti-Coull standard errors")
Z95 = 1.959964
# `--limit mmlu=5`: the column each short name limits
LIMIT_KEYS = {"mmlu": "MMLU", "truthfulqa": "TruthfulQA", "bbq": "BBQ", "cnndm": "CNN/DM ROUGE-2"}
ALL = "*"
TASK_FOLDER = "tasks"  # inside --out: the generated task YAMLs


def parse_limits(values: list[str] | tuple[str, ...]) -> dict[str, int | None]:
    """`["50"]`, `["mmlu=5", "bbq=20"]`: items per task, for every task (`*`) or one column's. `none` lifts
    the limit. A ValueError names the bad value and the known names."""
    limits: dict[str, int | None] = {}
    for value in values:
        key, sep, number = value.rpartition("=")
        column = LIMIT_KEYS.get(key.lower()) if sep else ALL
        if column is None:
            raise ValueError(f"--limit {value}: unknown benchmark {key!r} (known: {', '.join(LIMIT_KEYS)})")
        if number.lower() == "none":
            limits[column] = None
            continue
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"--limit {value}: expected a positive whole number of items or none")
        limits[column] = int(number)
    return limits


def task_limit(task: str, limits: dict[str, int | None]) -> int | None:
    paper = BY_NAME.get(task.removeprefix(LOCAL_PREFIX))
    if paper is not None and paper.column in limits:
        return limits[paper.column]
    return limits.get(ALL)


def describe_limits(limits: dict[str, int | None]) -> str:
    """`{"*": 50, "BBQ": None}` -> "at most 50 items per task; BBQ: every item"."""
    def items(n: int | None) -> str:
        return "every item" if n is None else f"at most {n} items per task"

    parts = [items(limits[ALL])] if ALL in limits else []
    parts += [f"{key}: {items(n)}" for key, n in limits.items() if key != ALL]
    return "; ".join(parts) or items(None)


def lm_eval_version() -> str:
    import lm_eval

    return lm_eval.__version__


def read_heldout(path: Path) -> list[dict]:
    """The Alpaca rows of a held-out file; a ValueError naming file:line and the field on a bad one."""
    from data_builders.decontaminate import read_training_rows
    from data_builders.errors import DataError

    try:
        rows, _ = read_training_rows(path)
    except DataError as err:
        raise ValueError(str(err)) from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def select_tasks(data_dir: Path | None, tasks: list[str], num_fewshot: int | None = None) -> tuple[list[str], list[dict]]:
    """What to run: the paper tasks with a file in `data_dir` (their configs returned, to write as YAMLs) plus
    `tasks`; with neither, the whole paper subset from the hub. Raises ValueError on a local setup that cannot
    run. Writes nothing."""
    if data_dir is None:
        return list(tasks) or [t.name for t in PAPER_TASKS], []
    configs = local_task_configs(data_dir)
    if not configs:
        expected = ", ".join(f"{t.name}.jsonl" for t in PAPER_TASKS[:2]) + ", ..."
        raise ValueError(f"--data-dir {data_dir}: no paper task file in it (expected e.g. {expected})")
    no_dev = [config["task"] for config in configs if config["fewshot_split"] is None]
    if num_fewshot and no_dev:
        raise ValueError(f"--num-fewshot {num_fewshot} needs a <task>.dev.jsonl for the shots; missing for {no_dev}")
    return [config["task"] for config in configs] + list(tasks), configs


@contextmanager
def task_manager(configs: list[dict], include_paths: list[Path], builtin: bool) -> Iterator:
    """lm-eval's index of the local task configs (as YAMLs in a temporary folder, which lm-eval reads while it
    runs), the `include_paths` and, when `builtin`, the ~3,000 tasks lm-eval ships (~15 s on 2 cores to index:
    built once, before the model loads, to check task names and then to run them)."""
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="nextai-eval-tasks-") as staging:
        for path, text in task_yamls(configs, Path(staging)).items():
            path.write_text(text)
        yield TaskManager(include_path=[staging, *map(str, include_paths)], include_defaults=builtin)


def check_task_names(manager, names: list[str]) -> None:
    """ValueError naming each of `names` that `manager` does not know, with the nearest known name."""
    known = set(manager.all_tasks)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = [name + did_you_mean(name, known) for name in unknown]
        raise ValueError(f"--tasks: unknown lm-eval task {', '.join(hints)}")


def evaluate(model, tokenizer, tasks: list[str], manager, limits: dict[str, int | None],
             num_fewshot: int | None = None, batch_size: int = 1) -> dict:
    """`lm_eval.simple_evaluate` on an already loaded model (base + adapter), once per distinct limit; the
    results merged: `results`, `n-samples`, and `item_scores` (per paper task, each item's score by doc id)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    groups: dict[int | None, list[str]] = {}
    for name in tasks:
        groups.setdefault(task_limit(name, limits), []).append(name)
    merged: dict = {"results": {}, "n-samples": {}, "item_scores": {}}
    for limit, names in groups.items():
        out = lm_eval.simple_evaluate(model=lm, tasks=names, limit=limit, num_fewshot=num_fewshot,
                                      task_manager=manager, log_samples=True, bootstrap_iters=0)
        merged["results"].update(out["results"])
        merged["n-samples"].update(out["n-samples"])
        for name, samples in out["samples"].items():
            task = BY_NAME.get(name.removeprefix(LOCAL_PREFIX))
            if task is not None:
                ordered = sorted(samples, key=lambda s: s["doc_id"])
                merged["item_scores"][name] = [float(s[task.metric]) for s in ordered]
    return merged


def proportion_se(p: float, n: int) -> float:
    """Standard error of an accuracy `p` over `n` items, Agresti-Coull's (two successes and two failures added):
    unlike the plain p(1 - p) / n it does not vanish at 0 or 100 %, where a handful of items often lands."""
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
    row = {"scores": {}, "intervals": {}, "n_tasks": {}, "items": items, "tasks": tasks, "n_samples": n_samples}
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
    Raises ValueError when the two did not score the same tasks and items."""
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


def heldout_examples(tokenizer, rows: list[dict], cutoff: int) -> tuple[list[dict], int]:
    """`rows` tokenized and masked as training does (prompt masked, EOS appended, cut at `cutoff`): those left
    with a response token inside the cutoff, and how many are not."""
    from axolotl_nextai.alpaca import tokenize_example

    examples = [tokenize_example(tokenizer, row["instruction"], row.get("input") or "", row["output"], cutoff,
                                 train_on_inputs=False) for row in rows]
    scored = [example for example in examples if any(label != -100 for label in example["labels"][1:])]
    return scored, len(examples) - len(scored)


def check_heldout_cutoff(base_model: str, rows: list[dict], cutoff: int) -> None:
    """A ValueError, before the model loads, when `cutoff` leaves no held-out row a response token to score."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError):
        return  # loading the model says why, naming --base-model
    if not heldout_examples(tokenizer, rows, cutoff)[0]:
        raise ValueError(f"--heldout-cutoff {cutoff}: no held-out row keeps a response token within {cutoff} tokens "
                         f"(the prompt fills all {len(rows)}); raise it to the recipe's sequence_len")


def heldout_loss(model, tokenizer, rows: list[dict], cutoff: int) -> dict:
    """Mean loss per response token on Alpaca `rows` (see `heldout_examples`); each row's own mean kept for
    pairing. Rows left with no response token inside the cutoff are counted, not scored."""
    import torch

    total, tokens, per_row = 0.0, 0, []
    examples, skipped = heldout_examples(tokenizer, rows, cutoff)
    for example in examples:
        labels = torch.tensor(example["labels"][1:])
        n = int((labels != -100).sum())
        ids = torch.tensor([example["input_ids"]], device=model.device)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits, labels.to(logits.device), ignore_index=-100,
                                                 reduction="sum").item()
        total, tokens = total + loss, tokens + n
        per_row.append(loss / n)
    return {"loss": total / tokens if tokens else None, "rows": len(per_row), "tokens": tokens,
            "skipped_rows": skipped, "cutoff": cutoff, "per_row": per_row}


def heldout_change(base: dict, tuned: dict) -> dict | None:
    """Fine-tuned minus base held-out loss, with a paired 95 % interval over the rows' own mean losses."""
    diffs = [t - b for b, t in zip(base["per_row"], tuned["per_row"], strict=True)]
    n = len(diffs)
    if not n:
        return None
    d = sum(diffs) / n
    se = math.sqrt(sum((x - d) ** 2 for x in diffs) / (n - 1) / n) if n > 1 else math.nan
    return {"change": tuned["loss"] - base["loss"], "per_row_mean_change": d,
            "interval": None if math.isnan(se) else [d - Z95 * se, d + Z95 * se]}


def fmt_score(column: str, value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "—"
    if column == "CNN/DM ROUGE-2":
        return f"{value:.3f}"
    cell = f"{100 * value:.1f} %"
    return cell + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")


def fmt_change(change: dict | None) -> str:
    if change is None:
        return "—"
    if not change.get("items_changed", 1):
        return "no answer changed"
    low, high = change["interval"] or (math.nan, math.nan)
    return f"{100 * change['change']:+.1f} pts [{100 * low:+.1f}, {100 * high:+.1f}]"


def to_markdown(rows: list[tuple[str, dict]], note: str, change: dict | None = None) -> str:
    """A Table-8-shaped Markdown table: a row per model (score and 95 % interval per benchmark, "—" where
    nothing ran, HELM-only columns marked), then the paired change and the items each column scored."""
    heldout = any(row.get("heldout") for _, row in rows)
    header = ["Model", *COLUMNS, *(["held-out loss"] if heldout else []), *HELM_ONLY]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in rows:
        cells = [label] + [fmt_score(c, row["scores"][c], row["intervals"][c]) for c in COLUMNS]
        if heldout:
            loss = (row.get("heldout") or {}).get("loss")
            cells.append("—" if loss is None else f"{loss:.4f}")
        lines.append("| " + " | ".join(cells + ["HELM only"] * len(HELM_ONLY)) + " |")
    if change is not None:
        cells = ["change (paired)"] + [fmt_change(change["columns"].get(c)) for c in COLUMNS]
        if heldout:
            held = change.get("heldout")
            cells.append("—" if held is None else f"{held['change']:+.4f}" + (
                f" [{held['interval'][0]:+.4f}, {held['interval'][1]:+.4f}]" if held["interval"] else ""))
        lines.append("| " + " | ".join(cells + [""] * len(HELM_ONLY)) + " |")
    _, first = rows[0]
    counts = [f"{first['items'][c]} ({first['n_tasks'][c]} subj.)" if c == "MMLU" else str(first["items"][c])
              for c in COLUMNS]
    if heldout:
        held = first.get("heldout") or {}
        skipped = f" ({held['skipped_rows']} with no response token within {held['cutoff']} skipped)" if held.get(
            "skipped_rows") else ""
        counts.append(f"{held.get('rows', 0)} rows, {held.get('tokens', 0):,} tokens{skipped}")
    lines.append("| items scored | " + " | ".join(counts + [""] * len(HELM_ONLY)) + " |")
    return "\n".join(lines) + f"\n\n{note}.\n"


def plot_comparison(rows: list[tuple[str, dict]]) -> bytes:
    """A PNG: bars per benchmark (score and 95 % interval) for each row, beside each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in COLUMNS if rows[0][1]["scores"][c] is not None and c != "CNN/DM ROUGE-2"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(rows)
    for i, (label, row) in enumerate(rows):
        xs = [j + i * width for j in range(len(columns))]
        values = [100 * row["scores"][c] for c in columns]
        errors = [[100 * (row["scores"][c] - row["intervals"][c][0]) for c in columns],
                  [100 * (row["intervals"][c][1] - row["scores"][c]) for c in columns]]
        ax.bar(xs, values, width, yerr=errors, capsize=4, label=label)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(columns))], columns)
    ax.set_ylabel("accuracy (%), 95 % interval")
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    plt.close(fig)
    return png.getvalue()


def write_results(out_dir: Path, rows: list[tuple[str, dict]], results: dict, note: str,
                 change: dict | None = None, configs: list[dict] = ()) -> str:
    """`results.md`, `results.json`, the local task YAMLs (`tasks/`) and, with two rows, `comparison.png` in
    `out_dir`, as one set: the last row (the model asked for) at the top level of the JSON, the base under
    `baseline`, the paired change, the source note, and every metric lm-eval gave for every task run (tasks
    outside the paper subset appear only there). Files of an earlier run that this one does not write (task
    YAMLs, a comparison plot) are removed. Returns results.md's text."""
    (label, row), *_ = rows[::-1]
    report = {"model": label, "source": note, **row, "lm_eval_results": results["results"]}
    markdown = to_markdown(rows, note, change)
    files: dict[Path, str | bytes] = {out_dir / "results.md": markdown, **task_yamls(list(configs), out_dir / TASK_FOLDER)}
    if len(rows) > 1:
        report["baseline"] = {"model": rows[0][0], **rows[0][1]}
        report["change"] = change
        files[out_dir / "comparison.png"] = plot_comparison(rows)
    files[out_dir / "results.json"] = dumps(finite_or_null(report), indent=2, default=str)
    earlier = [*(out_dir / TASK_FOLDER).glob(f"{LOCAL_PREFIX}*.yaml"), out_dir / "comparison.png"]
    write_set(files, stale=[p for p in earlier if p not in files])
    return markdown


def score(model, tokenizer, tasks: list[str], manager, limits: dict[str, int | None],
          num_fewshot: int | None = None, batch_size: int = 1, heldout: list[dict] | None = None,
          cutoff: int = 1024) -> tuple[dict, dict]:
    """(row, lm-eval results) for the model as it is: `table_row`, plus the held-out loss when rows are given."""
    results = evaluate(model, tokenizer, tasks, manager, limits, num_fewshot, batch_size)
    row = table_row(results)
    row["item_scores"] = results["item_scores"]
    if heldout:
        row["heldout"] = heldout_loss(model, tokenizer, heldout, cutoff)
    return row, results


def compare(base_row: dict, tuned_row: dict) -> dict:
    """The change row: paired per column, and for the held-out loss when both have one."""
    change = {"columns": paired_change(base_row["item_scores"], tuned_row["item_scores"])}
    if base_row.get("heldout") and tuned_row.get("heldout"):
        change["heldout"] = heldout_change(base_row["heldout"], tuned_row["heldout"])
    return change

