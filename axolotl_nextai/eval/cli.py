"""`nextai-eval`: parse flags, check what can be checked before the model loads, load base + adapter, run
lm-eval, write the table. No logic here."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

_PATH = click.Path(path_type=Path)
_FOLDER = click.Path(path_type=Path, exists=True, file_okay=False)


@click.command()
@click.option("--base-model", required=True, help="Base model folder or hub id.")
@click.option("--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none scores the base.")
@click.option("--data-dir", type=_FOLDER, default=None,
              help="Local task files, <task>.jsonl in the hub dataset's columns (e.g. mmlu_philosophy.jsonl); "
                   "only the paper tasks with a file run. Without it, lm-eval loads them from the hub.")
@click.option("--tasks", "extra_tasks", multiple=True, help="More lm-eval task names (repeatable).")
@click.option("--include-path", multiple=True, type=_FOLDER, help="Folder of custom lm-eval task YAMLs (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Items per task; HELM's --max-eval-instances 50.")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None,
              help="Shots for every task; default: each task's own.")
@click.option("--out", type=_PATH, default=Path("outputs/eval"), show_default=True,
              help="Folder for results.md, results.json and the generated task YAMLs.")
@click.option("--label", default=None, help="Row label; default: the adapter, else the base model.")
@click.option("--load-in-4bit/--no-load-in-4bit", default=None, help="Default: on with a CUDA GPU, off on CPU.")
def main(base_model, adapter, data_dir, extra_tasks, include_path, limit, num_fewshot, out, label,
         load_in_4bit) -> None:
    """Score a base model (+ adapter) on the paper's subset and write a Table-8-shaped row (lm-eval's numbers,
    not HELM's)."""
    from axolotl_nextai.atomic import unwritable
    from axolotl_nextai.checkpoint import ModelPathError, check_model_paths, load_model
    from axolotl_nextai.eval.runner import (
        check_task_names,
        evaluate,
        select_tasks,
        task_manager,
        write_report,
    )
    from axolotl_nextai.eval.tasks import task_yamls
    from axolotl_nextai.quiet import silence_known_noise

    silence_known_noise()
    problem = "not a folder" if out.exists() and not out.is_dir() else unwritable(out / "results.json")
    if problem:
        raise click.BadParameter(f"{out}: {problem}", param_hint="--out")
    try:
        check_model_paths(base_model, adapter)
    except ModelPathError as err:
        raise click.ClickException(str(err)) from None
    try:
        tasks, configs = select_tasks(data_dir, list(extra_tasks), num_fewshot)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # lm-eval reads the local task YAMLs while it runs; they join the output set only with the results.
    with tempfile.TemporaryDirectory(prefix="nextai-eval-tasks-") as staging:
        for path, text in task_yamls(configs, Path(staging)).items():
            path.write_text(text)
        manager = task_manager((Path(staging), *include_path))
        try:
            check_task_names(manager, list(extra_tasks))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        try:
            model, tokenizer = load_model(base_model, adapter, load_in_4bit)
        except ModelPathError as err:
            raise click.ClickException(str(err)) from None
        results = evaluate(model, tokenizer, tasks, manager, limit, num_fewshot)
    click.echo(write_report(out, label or adapter or base_model, results, limit, configs))


if __name__ == "__main__":
    main()
