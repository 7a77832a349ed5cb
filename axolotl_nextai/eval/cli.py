"""`nextai-eval`: parse flags, check what can be checked before the model loads, load base + adapter, run
lm-eval, write the table. No logic here."""

from __future__ import annotations

from pathlib import Path

import click

from data_builders.boundary import Guarded
from data_builders.extras import require_extra
from data_builders.files import InputFile

_PATH = click.Path(path_type=Path)
_FOLDER = click.Path(path_type=Path, exists=True, file_okay=False)


@click.command(cls=Guarded)
@click.option("--base-model", required=True, help="Base model folder or hub id.")
@click.option("--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none scores the base.")
@click.option("--compare-base", is_flag=True,
              help="Also score the base (the adapter switched off, same process, same items) and add a "
                   "paired change row: Table 8's base row beside the fine-tuned one.")
@click.option("--data-dir", type=_FOLDER, default=None,
              help="Local task files, <task>.jsonl[.gz] in the hub dataset's columns (e.g. mmlu_philosophy.jsonl; "
                   "data_builders/benchmark_items/helm-50 holds the paper's subset); only the paper tasks with a "
                   "file run. Without it, lm-eval loads them from the hub.")
@click.option("--tasks", "extra_tasks", multiple=True, help="More lm-eval task names (repeatable).")
@click.option("--include-path", multiple=True, type=_FOLDER, help="Folder of custom lm-eval task YAMLs (repeatable).")
@click.option("--limit", "limits", multiple=True, default=("50",), show_default=True,
              help="Items per task (HELM's --max-eval-instances 50), or per benchmark: mmlu=5, bbq=20, "
                   "truthfulqa=10, cnndm=N; none for all. Repeatable.")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None,
              help="Shots for every task; default: each task's own.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Requests per forward pass.")
@click.option("--heldout", type=InputFile(), default=None,
              help="Alpaca JSONL of rows never trained on: report the loss per response token on them.")
@click.option("--heldout-cutoff", type=click.IntRange(min=2), default=1024, show_default=True,
              help="Cut held-out rows at this many tokens, as the recipe's sequence_len cuts training rows.")
@click.option("--out", type=_PATH, default=Path("outputs/eval"), show_default=True,
              help="Folder for results.md, results.json (comparison.png) and the generated task YAMLs.")
@click.option("--label", default=None, help="Row label; default: the adapter, else the base model.")
@click.option("--load-in-4bit/--no-load-in-4bit", default=None, help="Default: on with a CUDA GPU, off on CPU.")
def main(base_model, adapter, compare_base, data_dir, extra_tasks, include_path, limits, num_fewshot, batch_size,
         heldout, heldout_cutoff, out, label, load_in_4bit) -> None:
    """Score a base model (+ adapter) on the paper's subset and write a Table-8-shaped table (lm-eval's numbers,
    not HELM's)."""
    require_extra("nextai-eval", "eval")
    from axolotl_nextai.eval import runner
    from axolotl_nextai.eval.tasks import check_local_files
    from axolotl_nextai.models.checkpoint import ModelPathError, check_model_paths, load_base_and_adapter
    from data_builders.atomic import unwritable
    from data_builders.errors import DataError
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    if compare_base and not adapter:
        raise click.UsageError("--compare-base needs --adapter: it scores the base with the adapter switched off")
    problem = "not a folder" if out.exists() and not out.is_dir() else unwritable(out / "results.json")
    if problem:
        raise click.BadParameter(f"{out}: {problem}", param_hint="--out")
    try:
        check_model_paths(base_model, adapter)
    except ModelPathError as err:
        raise click.ClickException(str(err)) from None
    try:
        limit_map = runner.parse_limits(limits)
        tasks, configs = runner.select_tasks(data_dir, list(extra_tasks), num_fewshot)
        heldout_rows = runner.read_heldout(heldout) if heldout else None
        if heldout_rows:
            runner.check_heldout_cutoff(base_model, heldout_rows, heldout_cutoff)
        check_local_files(configs)
    except DataError as exc:
        raise click.UsageError(f"--data-dir: {exc}") from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    builtin = any(not name.startswith(runner.LOCAL_PREFIX) for name in tasks)
    with runner.task_manager(configs, list(include_path), builtin) as manager:
        try:
            runner.check_task_names(manager, list(extra_tasks))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        try:
            model, tokenizer = load_base_and_adapter(base_model, adapter, load_in_4bit)
        except ModelPathError as err:
            raise click.ClickException(str(err)) from None
        args = (tokenizer, tasks, manager, limit_map, num_fewshot, batch_size, heldout_rows, heldout_cutoff)
        rows = []
        if compare_base:
            with model.disable_adapter():
                base_row, _ = runner.score(model, *args)
            rows.append((f"{Path(base_model).name} (base)", base_row))
        row, results = runner.score(model, *args)
    rows.append((label or adapter or base_model, row))
    change = runner.compare(rows[0][1], row) if compare_base else None
    note = runner.SOURCE_NOTE.format(version=runner.lm_eval_version(), limit=runner.describe_limits(limit_map))
    click.echo(runner.write_results(out, rows, results, note, change, configs))
    if compare_base:
        click.echo(f"table: {out / 'results.md'}  plot: {out / 'comparison.png'}  all numbers: {out / 'results.json'}")


if __name__ == "__main__":
    main()
