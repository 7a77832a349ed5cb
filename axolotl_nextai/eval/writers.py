"""nextai-eval's output set in `--out`: results.md, results.json, the local task YAMLs and, beside a base,
comparison.png, written together (data_builders/atomic.py) or not at all."""

from __future__ import annotations

from pathlib import Path

from axolotl_nextai.eval.plots import plot_comparison
from axolotl_nextai.eval.runner import Scored
from axolotl_nextai.eval.tables import to_markdown
from axolotl_nextai.eval.tasks import LOCAL_PREFIX, task_yamls
from data_builders.atomic import write_set
from data_builders.json_text import dumps, finite_or_null

TASK_FOLDER = "tasks"  # inside --out: the generated task YAMLs


def write_results(out_dir: Path, scored: Scored, configs: list[dict] = ()) -> str:
    """`results.md`, `results.json`, the local task YAMLs (`tasks/`) and, with two rows, `comparison.png` in
    `out_dir`, as one set: the last row (the model asked for) at the top level of the JSON, the base under
    `baseline`, the paired change, the source note, and every metric lm-eval gave for every task run (tasks
    outside the paper subset appear only there). Files of an earlier run that this one does not write (task
    YAMLs, a comparison plot) are removed. Returns results.md's text."""
    rows = scored.rows
    (label, row), *_ = rows[::-1]
    report = {"model": label, "source": scored.note, **row, "lm_eval_results": scored.results["results"]}
    markdown = to_markdown(rows, scored.note, scored.change)
    files: dict[Path, str | bytes] = {
        out_dir / "results.md": markdown,
        **task_yamls(list(configs), out_dir / TASK_FOLDER),
    }
    if len(rows) > 1:
        report["baseline"] = {"model": rows[0][0], **rows[0][1]}
        report["change"] = scored.change
        files[out_dir / "comparison.png"] = plot_comparison(rows)
    files[out_dir / "results.json"] = dumps(finite_or_null(report), indent=2, default=str)
    earlier = [*(out_dir / TASK_FOLDER).glob(f"{LOCAL_PREFIX}*.yaml"), out_dir / "comparison.png"]
    write_set(files, stale=[p for p in earlier if p not in files])
    return markdown
