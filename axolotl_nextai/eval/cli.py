"""`nextai-eval`: parse flags, load base + adapter, run lm-eval, write the table. No logic here."""

from __future__ import annotations

from pathlib import Path

import click

_PATH = click.Path(path_type=Path)


@click.command()
@click.option("--base-model", required=True, help="Base model folder or hub id.")
@click.option("--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none scores the base.")
@click.option("--data-dir", type=_PATH, default=None,
              help="Local task files, <task>.jsonl in the hub dataset's columns (e.g. mmlu_philosophy.jsonl); "
                   "only the paper tasks with a file run. Without it, lm-eval loads them from the hub.")
@click.option("--tasks", "extra_tasks", multiple=True, help="More lm-eval task names (repeatable).")
@click.option("--include-path", multiple=True, type=_PATH, help="Folder of custom lm-eval task YAMLs (repeatable).")
@click.option("--limit", default=50, show_default=True, help="Items per task; HELM's --max-eval-instances 50.")
@click.option("--num-fewshot", type=int, default=None, help="Shots for every task; default: each task's own.")
@click.option("--out", type=_PATH, default=Path("outputs/eval"), show_default=True,
              help="Folder for results.md, results.json and the generated task YAMLs.")
@click.option("--label", default=None, help="Row label; default: the adapter, else the base model.")
@click.option("--load-in-4bit/--no-load-in-4bit", default=None, help="Default: on with a CUDA GPU, off on CPU.")
def main(base_model, adapter, data_dir, extra_tasks, include_path, limit, num_fewshot, out, label,
         load_in_4bit) -> None:
    """Score a base model (+ adapter) on the paper's subset and write a Table-8-shaped row (lm-eval's numbers,
    not HELM's)."""
    from axolotl_nextai.checkpoint import load_model
    from axolotl_nextai.eval.runner import evaluate, select_tasks, write_report

    try:
        tasks, include_paths = select_tasks(data_dir, list(extra_tasks), list(include_path), out / "tasks",
                                            num_fewshot)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    model, tokenizer = load_model(base_model, adapter, load_in_4bit)
    results = evaluate(model, tokenizer, tasks, include_paths, limit, num_fewshot)
    click.echo(write_report(out, label or adapter or base_model, results, limit))


if __name__ == "__main__":
    main()
