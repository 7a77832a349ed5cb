"""`nextai-data`: command-line entry to the data builders. Commands parse arguments and call; no logic
here."""

from __future__ import annotations

from pathlib import Path

import click

from data_builders.boundary import GuardedGroup
from data_builders.decontaminate import THRESHOLD
from data_builders.errors import DataError
from data_builders.files import InputFile
from data_builders.numbers import FiniteFloatRange


def parse_paths(values: tuple[str, ...]) -> dict[str, Path]:
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected SOURCE=FILE, got {value!r}", param_hint="--path")
        if name in pairs:
            raise click.BadParameter(
                f"{name} given twice ({pairs[name]} and {path}); give one file per source",
                param_hint="--path",
            )
        pairs[name] = Path(path)
    return pairs


DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Torch device for the embeddings (auto: cuda when a GPU is visible, else cpu).",
)
ENCODER = click.option(
    "--encoder",
    type=click.Choice(["auto", "torch", "openvino"]),
    default="auto",
    show_default=True,
    help="What runs the embedding model. openvino: OpenVINO fp32 on the CPU, the same vectors as "
    "torch within ~1e-6, in less CPU time. auto: openvino on a CPU when the package "
    "is installed, else torch.",
)


def check_backend(device: str, encoder: str) -> tuple[str, str]:
    """The device and encoder a command will embed with, resolved now: a missing GPU or OpenVINO fails before
    anything loads, and `auto` falling back from OpenVINO is said once (the manifest keeps it too)."""
    from data_builders.dedup.embed import openvino_fallback, resolve_device, resolve_encoder

    resolved = resolve_device(device)
    if note := openvino_fallback(encoder, resolved):
        click.echo(f"note: {note}", err=True)
    return resolved, resolve_encoder(encoder, resolved)


@click.group(cls=GuardedGroup)
def main() -> None:
    """Build and inspect the nextAI instruction mixtures (Alpaca JSONL)."""
    from data_builders.quiet import silence_known_noise

    silence_known_noise()


@main.command()
@click.option("--mixture", required=True, help="Shipped mixture (v1..v7) or a mixture .yaml file.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSONL file to write.")
@click.option(
    "--source-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read each source from DIR/<source>.jsonl|.json|.parquet|.csv instead of the hub.",
)
@click.option("--path", "paths", multiple=True, metavar="SOURCE=FILE", help="Read one source from FILE.")
@click.option("--sample", is_flag=True, help="Use the small hand-written sample shipped in the package.")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="skip: drop bad rows and count them in the manifest.",
)
@click.option(
    "--licence",
    "--license",
    "licence",
    type=click.Choice(["any", "commercial", "research"]),
    default="any",
    show_default=True,
    help="Keep only rows whose licence allows this use.",
)
@click.option("--model", default=None, help="Sentence-Transformers model (name or folder) for near-dedup.")
@click.option("--tokenizer", default=None, help="Tokenizer (name or folder) for token statistics.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Reuse embeddings cached here (keyed by text and model; safe to share between builds): a "
    "rebuild, or another mixture, embeds only rows not seen before.",
)
@click.option(
    "--decontaminate-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Decontaminate against the benchmark files DIR/<task>.jsonl|.json|.parquet|.csv "
    "(a mixture's decontaminate: block turns it on too, from the hub by default).",
)
@click.option(
    "--near-dedup",
    "near_dedup_method",
    type=click.Choice(["auto", "exact", "prefilter"]),
    default="auto",
    show_default=True,
    help="exact: MiniLM on every row. prefilter: MiniLM only on rows a static model distilled from it "
    "(kept in the cache dir, or ~/.cache/nextai-data) finds a near neighbour for; same kept set, "
    "but hardly faster on real mixtures. auto: exact.",
)
@DEVICE
@ENCODER
@click.option(
    "--screen",
    type=click.Choice(["auto", "off", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="Embed every row in low precision and only the rows of pairs it cannot decide in fp32 (the "
    "same decisions as fp32, by construction). auto: fp16 on a GPU, bf16 on a CPU with AMX, off on "
    "other CPUs (no lower precision was faster there).",
)
def build(
    mixture,
    out,
    source_dir,
    paths,
    sample,
    on_error,
    licence,
    model,
    tokenizer,
    cache_dir,
    decontaminate_dir,
    near_dedup_method,
    device,
    encoder,
    screen,
) -> None:
    """Build a mixture: load, filter, select exact percentages, remove near-duplicates, write JSONL +
    manifest."""
    from data_builders.build import BuildOptions, input_files
    from data_builders.build import build as run_build
    from data_builders.dedup.embed import DEFAULT_MODEL
    from data_builders.dedup.stage import resolve_screen
    from data_builders.mixing import load_mixture
    from data_builders.sources import sample_dir
    from data_builders.writers import check_out, write_build

    if sample and source_dir:
        raise click.UsageError("--sample and --source-dir both name where rows come from; give one")
    overrides, source_dir = parse_paths(paths), sample_dir() if sample else source_dir
    try:
        resolve_screen(screen, *check_backend(device, encoder))
        spec = load_mixture(mixture)
        mixture_file = [Path(mixture)] if Path(mixture).is_file() else []
        options = BuildOptions(
            source_dir=source_dir,
            overrides=overrides,
            on_error=on_error,
            licence=licence,
            model=model or DEFAULT_MODEL,
            tokenizer=tokenizer,
            cache_dir=cache_dir,
            progress=True,
            decontaminate_dir=decontaminate_dir,
            near_dedup_method=near_dedup_method,
            device=device,
            encoder=encoder,
            screen=screen,
        )
        check_out(out, mixture_file + input_files(spec, options))
        result = run_build(spec, options)
        files = write_build(result, out)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    stages = result.manifest["stages"]
    click.echo(
        f"{spec.name}: {stages['load']['records']} records -> {stages['filter']['out']} after filters "
        f"-> {stages['select']['out']} selected -> {stages['near_dedup']['out']} after near-dedup"
        + (f" -> {stages['decontaminate']['out']} after decontamination" if "decontaminate" in stages else "")
    )
    if stages["filter"]["dropped"]:
        click.echo(
            "  dropped by filters: "
            + ", ".join(f"{why} {n}" for why, n in stages["filter"]["dropped"].items())
        )
    for kind, path in files.items():
        click.echo(f"  {kind}: {path}")


@main.command("decontaminate")
@click.argument("in_file", metavar="IN", type=InputFile())
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="JSONL file to write."
)
@click.option(
    "--benchmarks-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read DIR/<task>.jsonl|.json|.parquet|.csv (the files nextai-eval --data-dir reads) "
    "instead of the hub.",
)
@click.option(
    "--benchmark",
    "benchmarks",
    multiple=True,
    metavar="TASK",
    help="Only this benchmark (repeatable; default: all 20 lm-eval tasks of the paper's subset).",
)
@click.option(
    "--threshold",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=THRESHOLD,
    show_default=True,
    help="Remove a row whose cosine to a benchmark text is at least this (Platypus: 0.8).",
)
@click.option("--model", default=None, help="Sentence-Transformers model (name or folder).")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Reuse embeddings cached here (keyed by text and model), shared with build.",
)
@DEVICE
@ENCODER
def decontaminate(
    in_file, out, benchmarks_dir, benchmarks, threshold, model, cache_dir, device, encoder
) -> None:
    """Remove rows of IN (Alpaca JSONL) close to a test item of the paper's benchmarks; write OUT, the
    matched pairs and a manifest."""
    from data_builders.benchmarks import BENCHMARKS, benchmark_files
    from data_builders.decontaminate import decontaminate_file
    from data_builders.dedup.embed import DEFAULT_MODEL
    from data_builders.writers import check_out, write_decontaminated

    try:
        check_backend(device, encoder)
        check_out(out, [in_file, *benchmark_files(list(benchmarks or BENCHMARKS), benchmarks_dir)])
        result = decontaminate_file(
            in_file,
            list(benchmarks or BENCHMARKS),
            benchmarks_dir,
            threshold,
            model or DEFAULT_MODEL,
            cache_dir,
            progress=True,
            device=device,
            encoder=encoder,
        )
        files = write_decontaminated(result, out)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    summary = result.manifest["decontamination"]
    click.echo(
        f"{in_file.name}: {result.manifest['input']['rows']} rows -> {len(result.rows)} "
        f"({summary['removed']} at cosine >= {threshold:g} to a benchmark item)"
    )
    for name, stats in summary["benchmarks"].items():
        if stats["removed"]:
            click.echo(f"  {name}: {stats['removed']}")
    for kind, path in files.items():
        click.echo(f"  {kind}: {path}")


@main.command("benchmark-items")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for <task>.jsonl (what nextai-eval --data-dir and --decontaminate-dir read).",
)
@click.option(
    "--mmlu-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="MMLU's data/ folder (hendrycks/test): test/<subject>_test.csv and dev/<subject>_dev.csv.",
)
@click.option(
    "--bbq-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="BBQ's data/ folder (nyu-mll/BBQ): every <Category>.jsonl in it, pooled.",
)
@click.option(
    "--truthfulqa-csv",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TruthfulQA.csv (sylinrl/TruthfulQA), the generation set: mc1 from its answer columns.",
)
@click.option(
    "--per-task",
    type=click.IntRange(min=1),
    default=None,
    help="A seeded sample of this many items per task (HELM: 50); default: every item.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the per-task sample.")
@click.option("--gzip", "compress", is_flag=True, help="Write <task>.jsonl.gz.")
def benchmark_items(out, mmlu_dir, bbq_dir, truthfulqa_csv, per_task, seed, compress) -> None:
    """Turn the original MMLU / BBQ / TruthfulQA files into the paper's lm-eval task files (17 MMLU subjects,
    bbq, truthfulqa_mc1), whole or as seeded per-task samples."""
    from data_builders.benchmark_releases import read_items, write_items
    from data_builders.benchmarks import BENCHMARKS

    if not (mmlu_dir or bbq_dir or truthfulqa_csv):
        raise click.UsageError("give at least one of --mmlu-dir, --bbq-dir, --truthfulqa-csv")
    wanted = [
        name
        for name in BENCHMARKS
        if (name.startswith("mmlu_") and mmlu_dir)
        or (name == "bbq" and bbq_dir)
        or (name == "truthfulqa_mc1" and truthfulqa_csv)
    ]
    try:
        manifest = write_items(
            read_items(wanted, mmlu_dir, bbq_dir, truthfulqa_csv), out, per_task, seed, compress
        )
    except DataError as err:
        raise click.ClickException(str(err)) from None
    rows = sum(task["rows"] for task in manifest["tasks"].values())
    click.echo(f"{len(manifest['tasks'])} tasks, {rows:,} items -> {out}")


@main.command("list")
def list_() -> None:
    """Shipped mixtures (sources and percentages) and sources (hub id, licence, LLM-generated)."""
    from data_builders.filters.licence import licence_class
    from data_builders.mixing import load_mixture, mixture_names
    from data_builders.sources import SOURCES

    click.echo("mixtures:")
    for name in mixture_names():
        m = load_mixture(name)
        parts = ", ".join(
            f"{e.source} {e.percent:g}%" if e.rows is None else f"{e.source} {e.rows:,} rows"
            for e in m.sources
        )
        click.echo(f"  {name}: {parts} (seed {m.seed})")
    click.echo("sources:")
    for name, spec in SOURCES.items():
        llm = {True: "yes", False: "no", None: "unknown or per row"}[spec.llm_generated]
        revision = spec.revision[:12] if len(spec.revision) == 40 else spec.revision
        kind = "per row" if spec.licence == "per subset" else licence_class(spec.licence)
        click.echo(
            f"  {name}: {spec.hub_id}@{revision}  licence {spec.licence} ({kind})  LLM-generated {llm}"
        )


@main.command()
@click.argument("file", type=InputFile())
def inspect(file: Path) -> None:
    """Rows per source and length statistics (characters) of a built JSONL."""
    from data_builders.summary import summarise

    try:
        summary = summarise(file)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{file}: {summary['rows']} rows")
    for source, n in summary["by_source"].items():
        click.echo(f"  {source}: {n}")
    for key, stats in summary["lengths"].items():
        click.echo(f"  {key} chars: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
