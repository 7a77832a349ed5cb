"""A mixture build, stage by stage: load -> filter and select -> near-dedup [-> decontaminate].
Pure: files in, rows + manifest out.

`build()` is those stages in order; each takes rows and returns rows with its statistics, which the manifest
records (datatrove's `stats/` in one file). Writing is the caller's (writers.py), after every stage has
succeeded, so a failed build leaves no file. What can fail without reading a row fails before any is read: a
missing source file, a source the Hub cannot give (gated, offline, renamed), the tokenizer, the embedding
model and its cache, the benchmark files. A build that would write no row is an error; a source that
contributes none, or rows skipped as bad, are warnings, printed and kept in the manifest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders.alpaca_prompt import render_prompt
from data_builders.benchmarks import BenchmarkTexts, benchmark_files, load_benchmarks
from data_builders.decontaminate import Contamination, TrainingRow, decontaminate
from data_builders.dedup.embed import DEFAULT_MODEL, check_embedding, embed, resolve_device, resolve_encoder
from data_builders.dedup.near_dup import Removal
from data_builders.dedup.stage import near_dedup, resolve_method
from data_builders.errors import DataError, first_line
from data_builders.files import MISSING, file_problem
from data_builders.filters.base import Filter, run_filters
from data_builders.filters.empty_instruction import EmptyInstruction
from data_builders.filters.empty_output import EmptyOutput
from data_builders.filters.exact_dup import ExactDuplicate
from data_builders.filters.licence import Licence, licence_class
from data_builders.filters.platypus_subsets import PlatypusSubsets
from data_builders.manifest import manifest_head
from data_builders.mixing import Decontaminate, Mixture, entry_spec, seeded_sample, wanted_count
from data_builders.records import Record
from data_builders.sources.base import find_source_file, load
from data_builders.sources.hub import HubSource, locate
from data_builders.summary import length_stats


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How to build a mixture (`nextai-data build`'s options)."""

    source_dir: Path | None = None  # DIR/<source>.* for every source without its own file; None: the hub
    overrides: dict[str, Path] = field(default_factory=dict)  # source -> its file (`--path`)
    on_error: str = "fail"  # or "skip": count and skip bad rows
    licence: str = "any"  # "commercial" or "research": keep only rows of that licence class
    model: str = DEFAULT_MODEL  # embedding model of near-dedup and decontamination
    tokenizer: str | None = None  # token statistics of the rows as the recipe renders them
    cache_dir: Path | None = None  # embeddings reused across builds
    progress: bool = False
    # turns decontamination on, replacing the mixture's `benchmarks_dir`
    decontaminate_dir: Path | None = None
    near_dedup_method: str = "auto"  # dedup/stage.py: auto, exact or prefilter
    device: str = "auto"
    encoder: str = "auto"  # dedup/embed.py: auto (openvino on a CPU where installed), torch or openvino
    # dedup/stage.py: a low-precision screen with fp32's decisions (auto, off, fp16, bf16)
    screen: str = "auto"


@dataclass
class Build:
    records: list[Record]
    manifest: dict
    pairs: list[dict] = field(default_factory=list)  # near-duplicate removals: kept text, removed text, score
    dropped: list[tuple[Record, str]] = field(default_factory=list)
    # rows removed as benchmark copies; None when the step did not run
    contamination: list[dict] | None = None
    warnings: list[str] = field(default_factory=list)  # also in the manifest


@dataclass
class Loaded:
    """The load stage: each source's records, and per source its origin and row counts."""

    records: dict[str, list[Record]]
    per_source: dict[str, dict]
    warnings: list[str]


@dataclass
class Selected:
    """The filter-and-select stage: the chosen rows in mixture order, drops per reason, the dropped rows, and
    per source how many passed the filters and how many were chosen."""

    records: list[Record]
    dropped_counts: Counter
    dropped: list[tuple[Record, str]]
    per_source: dict[str, dict]
    warnings: list[str]


@dataclass
class Deduplicated:
    """The near-dedup stage: the kept rows, the removed pairs, the stage's statistics, and the kept rows'
    vectors (reused by decontamination; None when it does not run)."""

    records: list[Record]
    pairs: list[dict]
    removed_per_source: Counter
    stats: dict
    vectors: np.ndarray | None


def source_path(entry, source_dir: Path | None, overrides: dict[str, Path]) -> Path | None:
    """Where an entry's rows come from: an override, the entry's own path, DIR/<source>.*, or the hub (None).
    A named file that does not exist is a DataError."""
    named = overrides.get(entry.source) or (Path(entry.path) if entry.path else None)
    if named is not None:
        problem = file_problem(named)
        if problem == MISSING:
            raise DataError(f"missing source file for {entry.source}: {named}")
        if problem:
            raise DataError(f"source file for {entry.source}: {named} {problem}")
        return named
    if source_dir is not None:
        return find_source_file(entry.source, source_dir)
    return None


def filter_rules(licence: str = "any") -> list[Filter]:
    """The per-record rules of a build, in order; the exact-duplicate rule keeps state across the mixture."""
    return [PlatypusSubsets(), EmptyInstruction(), EmptyOutput(), Licence(licence), ExactDuplicate()]


def decontamination(mixture: Mixture, decontaminate_dir: Path | None) -> Decontaminate | None:
    """The decontamination step a build runs: the mixture's block, `decontaminate_dir` turning it on (and
    replacing its `benchmarks_dir`), or None."""
    if decontaminate_dir is None:
        return mixture.decontaminate
    return (mixture.decontaminate or Decontaminate()).model_copy(
        update={"benchmarks_dir": str(decontaminate_dir)}
    )


def input_files(mixture: Mixture, options: BuildOptions) -> list[Path]:
    """Every local file a build reads, sources and benchmarks; a missing one is a DataError naming it."""
    files = [
        path
        for entry in mixture.sources
        if (path := source_path(entry, options.source_dir, options.overrides))
    ]
    decontam = decontamination(mixture, options.decontaminate_dir)
    if decontam is not None and decontam.benchmarks_dir:
        files += benchmark_files(decontam.benchmarks, Path(decontam.benchmarks_dir))
    return files


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise DataError(f"--tokenizer {name}: cannot load ({first_line(err)})") from None


def locate_hub_sources(mixture: Mixture, paths: dict[str, Path | None]) -> dict[str, HubSource]:
    """Each source read from the Hub (where `paths` has None), located without reading a row: gated, offline
    or renamed fails here, before the embedding model loads."""
    return {
        entry.source: locate(entry_spec(entry)) for entry in mixture.sources if paths[entry.source] is None
    }


def load_sources(
    mixture: Mixture,
    paths: dict[str, Path | None],
    on_error: str = "fail",
    progress: bool = False,
    hub: dict[str, HubSource] | None = None,
) -> Loaded:
    """Every source's records (from its file, or the Hub where `paths` has None: `hub`'s located source, or
    located now); a source whose every row is bad is an error, one with some bad rows (`on_error="skip"`) a
    warning."""
    loaded, per_source, warnings = {}, {}, []
    for entry in tqdm(mixture.sources, desc="load", unit="source", disable=not progress):
        spec = entry_spec(entry)
        got = load(spec, paths[entry.source], on_error, (hub or {}).get(entry.source))
        if got.bad_rows == got.rows_in:
            raise DataError(
                f"source {entry.source}: every row is bad ({got.bad_rows}; first: {got.bad_examples[0]})"
            )
        if got.bad_rows:
            warnings.append(
                f"source {entry.source}: skipped {got.bad_rows} bad rows of {got.rows_in} "
                f"(--on-error skip; first: {got.bad_examples[0]})"
            )
        loaded[entry.source] = got.records
        per_source[entry.source] = {
            "origin": got.origin,
            "licence": spec.licence,
            "llm_generated": spec.llm_generated,
            "rows_in": got.rows_in,
            "bad_rows": got.bad_rows,
            "records": len(got.records),
        }
        if got.bad_examples:
            per_source[entry.source]["bad_row_examples"] = got.bad_examples
    return Loaded(loaded, per_source, warnings)


def filter_and_select(
    mixture: Mixture, loaded: dict[str, list[Record]], rules: list[Filter], progress: bool = False
) -> Selected:
    """Per source in mixture order: the records that pass `rules` (exact duplicates are caught across the
    mixture, first seen wins), then the entry's seeded share of them. Selecting no row at all is an error."""
    counts_all: Counter = Counter()
    dropped: list[tuple[Record, str]] = []
    chosen_all: list[Record] = []
    per_source, warnings = {}, []
    for entry in tqdm(mixture.sources, desc="filter+select", unit="source", disable=not progress):
        counts: Counter = Counter()
        kept = run_filters(loaded[entry.source], rules, counts, dropped)
        chosen = seeded_sample(kept, wanted_count(entry, len(kept)), mixture.seed, entry.source)
        counts_all.update(counts)
        chosen_all.extend(chosen)
        per_source[entry.source] = {
            "dropped": dict(sorted(counts.items())),
            "available": len(kept),
            "percent": entry.percent,
            "rows_requested": entry.rows,
            "selected": len(chosen),
        }
        if not chosen:
            warnings.append(
                f"source {entry.source}: contributes 0 rows ({len(loaded[entry.source])} records, "
                f"{len(kept)} after filters)"
            )
    if not chosen_all:
        raise DataError(
            f"mixture {mixture.name} selects 0 rows: "
            + ", ".join(
                f"{name} {len(loaded[name])} records, {stats['available']} after filters"
                for name, stats in per_source.items()
            )
        )
    return Selected(chosen_all, counts_all, dropped, per_source, warnings)


def remove_near_duplicates(
    records: list[Record], threshold: float, options: BuildOptions, keep_vectors: bool
) -> Deduplicated:
    """Rows whose cosine to an earlier kept row is above `threshold` go (dedup/stage.py picks the method)."""
    dedup = near_dedup(
        [r.prompt_text for r in records],
        options.model,
        threshold,
        options.near_dedup_method,
        options.device,
        options.cache_dir,
        options.progress,
        embed_kept=keep_vectors,
        encoder=options.encoder,
        screen=options.screen,
    )
    out = [r for r, k in zip(records, dedup.keep, strict=True) if k]
    return Deduplicated(
        records=out,
        pairs=[pair_row(records, r) for r in dedup.removals],
        removed_per_source=Counter(records[r.removed].source for r in dedup.removals),
        stats={**dedup.stats, "removed": len(dedup.removals), "out": len(out)},
        vectors=dedup.vectors[dedup.keep] if keep_vectors else None,
    )


def remove_benchmark_copies(
    mixture: Mixture, deduped: Deduplicated, bench: BenchmarkTexts, threshold: float, options: BuildOptions
) -> tuple[list[Record], Contamination]:
    """Rows at cosine >= `threshold` to a benchmark text go (decontaminate.py), by near-dedup's own
    vectors."""
    bench_vectors = embed(
        bench.texts,
        options.model,
        progress=options.progress,
        cache_dir=options.cache_dir,
        device=deduped.stats["device"],
        encoder=deduped.stats["encoder"],
    )
    rows = [TrainingRow(id=r.id, text=r.prompt_text, source=r.source) for r in deduped.records]
    found = decontaminate(rows, deduped.vectors, bench, bench_vectors, threshold)
    out = [r for r, k in zip(deduped.records, found.keep, strict=True) if k]
    if not out:
        raise DataError(
            f"mixture {mixture.name}: decontamination removed every one of its "
            f"{found.summary['removed']} rows"
        )
    return out, found


def build(mixture: Mixture, options: BuildOptions = BuildOptions()) -> Build:
    """Build `mixture`: check what can fail early, then load, filter and select, near-dedup and, when the
    mixture's `decontaminate:` block or `options.decontaminate_dir` asks for it, decontaminate."""
    unknown = options.overrides.keys() - {e.source for e in mixture.sources}
    if unknown:
        raise DataError(f"--path names a source not in mixture {mixture.name}: {', '.join(sorted(unknown))}")
    paths = {
        entry.source: source_path(entry, options.source_dir, options.overrides) for entry in mixture.sources
    }
    hub = locate_hub_sources(mixture, paths)
    tok = load_tokenizer(options.tokenizer) if options.tokenizer else None
    device = resolve_device(options.device)
    resolve_method(options.near_dedup_method, options.model, mixture.threshold)  # before the model loads
    check_embedding(options.model, options.cache_dir, device, resolve_encoder(options.encoder, device))
    decontam, bench = decontamination(mixture, options.decontaminate_dir), None
    if decontam is not None:
        bench = load_benchmarks(
            decontam.benchmarks, Path(decontam.benchmarks_dir) if decontam.benchmarks_dir else None
        )

    loaded = load_sources(mixture, paths, options.on_error, options.progress, hub)
    selected = filter_and_select(mixture, loaded.records, filter_rules(options.licence), options.progress)
    deduped = remove_near_duplicates(
        selected.records, mixture.threshold, options, keep_vectors=bench is not None
    )
    out, found = deduped.records, None
    if bench is not None:
        out, found = remove_benchmark_copies(mixture, deduped, bench, decontam.threshold, options)

    manifest = build_manifest(mixture, options, loaded, selected, deduped, out, found)
    if tok is not None:
        manifest["tokens"] = token_stats(out, tok, options.tokenizer)
    return Build(
        out, manifest, deduped.pairs, selected.dropped, found.pairs if found else None, manifest["warnings"]
    )


def build_manifest(
    mixture: Mixture,
    options: BuildOptions,
    loaded: Loaded,
    selected: Selected,
    deduped: Deduplicated,
    out: list[Record],
    found: Contamination | None,
) -> dict:
    """The build's manifest from each stage's statistics: per source (origin, rows in, drops, selected,
    near-duplicates, out), rows per stage, the output's licences, warnings."""
    kept_per_source = Counter(r.source for r in out)
    per_source = {
        name: {
            **stats,
            **selected.per_source[name],
            "near_duplicates": deduped.removed_per_source[name],
            "out": kept_per_source[name],
        }
        for name, stats in loaded.per_source.items()
    }
    if found is not None:
        for name, stats in per_source.items():
            stats["contaminated"] = found.summary["removed_per_source"].get(name, 0)
    stages = {
        "load": {
            "rows_in": sum(s["rows_in"] for s in per_source.values()),
            "bad_rows": sum(s["bad_rows"] for s in per_source.values()),
            "records": sum(len(v) for v in loaded.records.values()),
        },
        "filter": {
            "dropped": dict(sorted(selected.dropped_counts.items())),
            "out": sum(s["available"] for s in per_source.values()),
        },
        "select": {"out": len(selected.records)},
        "near_dedup": deduped.stats,
    }
    if found is not None:
        stages["decontaminate"] = {"removed": found.summary["removed"], "out": len(out)}
    manifest = manifest_head("nextai-data", options.model)
    manifest["options"].update(
        on_error=options.on_error, licence=options.licence, threshold=mixture.threshold
    )
    manifest.update(
        {
            "mixture": mixture.model_dump(exclude_defaults=True),
            "sources": per_source,
            "stages": stages,
            "licences": dict(
                sorted(Counter(f"{r.licence} ({licence_class(r.licence)})" for r in out).items())
            ),
            "llm_generated_rows": sum(1 for r in out if r.llm_generated),
            "warnings": loaded.warnings + selected.warnings,
        }
    )
    if found is not None:
        manifest["decontamination"] = found.summary
    return manifest


def pair_row(records: list[Record], removal: Removal) -> dict:
    kept, removed = records[removal.kept], records[removal.removed]
    return {
        "score": round(removal.score, 4),
        "kept_id": kept.id,
        "kept": kept.prompt_text,
        "removed_id": removed.id,
        "removed": removed.prompt_text,
    }


def token_stats(records: list[Record], tok, tokenizer: str) -> dict:
    """Token counts of each row as the recipe trains on it (Alpaca prompt + output + EOS), by `tok`, the
    tokenizer loaded from `tokenizer`."""
    texts = [render_prompt(r.instruction, r.input) + r.output for r in records]
    lengths = (
        sorted(len(ids) + 1 for ids in tok(texts, add_special_tokens=True)["input_ids"]) if texts else [0]
    )
    return {
        "tokenizer": Path(tokenizer).name,
        "total": sum(lengths),
        **length_stats(lengths),
        "rows_over_1024": sum(1 for n in lengths if n > 1024),
    }
