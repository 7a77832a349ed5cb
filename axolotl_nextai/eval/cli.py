"""`nextai-eval`: parse flags into `EvalOptions`, then check (`runner.prepare`), score (`runner.run`) and
write (`writers.write_results`). No logic here; an `EvalInputError` is a usage error (exit 2)."""

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
@click.option(
    "--adapter", default=None, help="LoRA adapter folder (a run's output_dir); none scores the base."
)
@click.option(
    "--compare-base",
    is_flag=True,
    help="Also score the base (the adapter switched off, same process, same items) and add a "
    "paired change row: Table 8's base row beside the fine-tuned one.",
)
@click.option(
    "--data-dir",
    type=_FOLDER,
    default=None,
    help="Local task files, <task>.jsonl[.gz] in the hub dataset's columns (e.g. mmlu_philosophy.jsonl; "
    "data_builders/benchmark_items/helm-50 holds the paper's subset); only the paper tasks with a "
    "file run. Without it, lm-eval loads them from the hub.",
)
@click.option("--tasks", "extra_tasks", multiple=True, help="More lm-eval task names (repeatable).")
@click.option(
    "--include-path", multiple=True, type=_FOLDER, help="Folder of custom lm-eval task YAMLs (repeatable)."
)
@click.option(
    "--limit",
    "limits",
    multiple=True,
    default=("50",),
    show_default=True,
    help="Items per task (HELM's --max-eval-instances 50), or per benchmark: mmlu=5, bbq=20, "
    "truthfulqa=10, cnndm=N; none for all. Repeatable.",
)
@click.option(
    "--num-fewshot",
    type=click.IntRange(min=0),
    default=None,
    help="Shots for every task; default: each task's own.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Requests per forward pass.",
)
@click.option(
    "--heldout",
    type=InputFile(),
    default=None,
    help="Alpaca JSONL of rows never trained on: report the loss per response token on them.",
)
@click.option(
    "--heldout-cutoff",
    type=click.IntRange(min=2),
    default=1024,
    show_default=True,
    help="Cut held-out rows at this many tokens, as the recipe's sequence_len cuts training rows.",
)
@click.option(
    "--out",
    type=_PATH,
    default=Path("outputs/eval"),
    show_default=True,
    help="Folder for results.md, results.json (comparison.png) and the generated task YAMLs.",
)
@click.option("--label", default=None, help="Row label; default: the adapter, else the base model.")
@click.option(
    "--load-in-4bit/--no-load-in-4bit", default=None, help="Default: on with a CUDA GPU, off on CPU."
)
def main(
    base_model,
    adapter,
    compare_base,
    data_dir,
    extra_tasks,
    include_path,
    limits,
    num_fewshot,
    batch_size,
    heldout,
    heldout_cutoff,
    out,
    label,
    load_in_4bit,
) -> None:
    """Score a base model (+ adapter) on the paper's subset and write a Table-8-shaped table (lm-eval's
    numbers, not HELM's)."""
    require_extra("nextai-eval", "eval")
    from axolotl_nextai.eval.errors import EvalInputError
    from axolotl_nextai.eval.runner import EvalOptions, prepare, run
    from axolotl_nextai.eval.tasks import parse_limits
    from axolotl_nextai.eval.writers import write_results
    from axolotl_nextai.models.checkpoint import ModelPathError, check_model_paths
    from data_builders.atomic import unwritable
    from data_builders.quiet import silence_known_noise

    silence_known_noise()
    if compare_base and not adapter:
        raise click.UsageError(
            "--compare-base needs --adapter: it scores the base with the adapter switched off"
        )
    problem = "not a folder" if out.exists() and not out.is_dir() else unwritable(out / "results.json")
    if problem:
        raise click.BadParameter(f"{out}: {problem}", param_hint="--out")
    try:
        check_model_paths(base_model, adapter)
        options = EvalOptions(
            base_model=base_model,
            adapter=adapter,
            compare_base=compare_base,
            data_dir=data_dir,
            extra_tasks=extra_tasks,
            include_paths=include_path,
            limits=parse_limits(limits),
            num_fewshot=num_fewshot,
            batch_size=batch_size,
            heldout=heldout,
            heldout_cutoff=heldout_cutoff,
            label=label,
            load_in_4bit=load_in_4bit,
        )
        prepared = prepare(options)
        scored = run(options, prepared)
    except ModelPathError as err:
        raise click.ClickException(str(err)) from None
    except EvalInputError as err:
        raise click.UsageError(str(err)) from None
    click.echo(write_results(out, scored, prepared.configs))
    if compare_base:
        click.echo(
            f"table: {out / 'results.md'}  plot: {out / 'comparison.png'}  all numbers: "
            f"{out / 'results.json'}"
        )


if __name__ == "__main__":
    main()
