"""A mixture build, stage by stage: load -> filter -> select -> near-dedup [-> decontaminate].
Pure: files in, rows + manifest out.

Each stage logs rows in and out (and per drop reason) into the manifest, datatrove's `stats/` in one file.
Writing is the caller's (writers.py), after every stage has succeeded, so a failed build leaves no file.
What can fail without reading a row fails before any is read: a missing source file, the tokenizer, the
embedding model and its cache, the benchmark files. A build that would write no row is an error; a source
that contributes none, or rows skipped as bad, are warnings, printed and kept in the manifest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from data_builders.alpaca_prompt import render_prompt
from data_builders.benchmarks import benchmark_files, load_benchmarks
from data_builders.decontaminate import TrainingRow, decontaminate
from data_builders.dedup.embed import DEFAULT_MODEL, check_embedding, embed, resolve_device, resolve_model
from data_builders.dedup.near_dup import Removal
from data_builders.dedup.stage import near_dedup
from data_builders.errors import DataError, first_line
from data_builders.filters.base import Filter, run_filters
from data_builders.filters.empty_instruction import EmptyInstruction
from data_builders.filters.empty_output import EmptyOutput
from data_builders.filters.exact_dup import ExactDuplicate
from data_builders.filters.licence import Licence, licence_class
from data_builders.filters.platypus_subsets import PlatypusSubsets
from data_builders.mixing import Decontaminate, Entry, Mixture, entry_spec, select, wanted_count
from data_builders.records import Record
from data_builders.sources.base import find_source_file, load
from data_builders.summary import length_stats


@dataclass
class Build:
    records: list[Record]
    manifest: dict
    pairs: list[dict] = field(default_factory=list)  # near-duplicate removals: kept text, removed text, score
    dropped: list[tuple[Record, str]] = field(default_factory=list)
    contamination: list[dict] | None = None  # rows removed as benchmark copies; None when the step did not run
    warnings: list[str] = field(default_factory=list)  # also in the manifest


def source_path(entry, source_dir: Path | None, overrides: dict[str, Path]) -> Path | None:
    """Where an entry's rows come from: an override, the entry's own path, DIR/<source>.*, or the hub (None).
    A named file that does not exist is a DataError."""
    named = overrides.get(entry.source) or (Path(entry.path) if entry.path else None)
    if named is not None:
        if not named.is_file():
            raise DataError(f"missing source file for {entry.source}: {named}")
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
    return (mixture.decontaminate or Decontaminate()).model_copy(update={"benchmarks_dir": str(decontaminate_dir)})


def input_files(mixture: Mixture, source_dir: Path | None = None, overrides: dict[str, Path] | None = None,
                decontaminate_dir: Path | None = None) -> list[Path]:
    """Every local file a build reads, sources and benchmarks; a missing one is a DataError naming it."""
    files = [path for entry in mixture.sources if (path := source_path(entry, source_dir, overrides or {}))]
    decontam = decontamination(mixture, decontaminate_dir)
    if decontam is not None and decontam.benchmarks_dir:
        files += benchmark_files(decontam.benchmarks, Path(decontam.benchmarks_dir))
    return files


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise DataError(f"--tokenizer {name}: cannot load ({first_line(err)})") from None


def filter_select(entry: Entry, records: list[Record], rules: list[Filter], seed: int, counts: Counter,
                  dropped: list[tuple[Record, str]] | None = None) -> tuple[int, list[Record]]:
    """One source's filter + select step: how many records pass `rules` (drops counted into `counts`, and kept
    aside in `dropped`), and the entry's seeded share of them."""
    kept = run_filters(records, rules, counts, dropped)
    return len(kept), select(kept, wanted_count(entry, len(kept)), seed, entry.source)


def build(mixture: Mixture, *, source_dir: Path | None = None, overrides: dict[str, Path] | None = None,
          on_error: str = "fail", licence: str = "any", model: str = DEFAULT_MODEL,
          tokenizer: str | None = None, cache_dir: Path | None = None, progress: bool = False,
          decontaminate_dir: Path | None = None, near_dedup_method: str = "auto", device: str = "auto") -> Build:
    """Build `mixture`.

    Near-dedup runs by `near_dedup_method` on `device` (dedup/stage.py; `auto`: the fastest method with the
    paper's decisions there). Decontamination runs when the mixture has a `decontaminate:` block or
    `decontaminate_dir` is given (which then replaces the block's `benchmarks_dir`).
    """
    overrides = overrides or {}
    unknown = overrides.keys() - {e.source for e in mixture.sources}
    if unknown:
        raise DataError(f"--path names a source not in mixture {mixture.name}: {', '.join(sorted(unknown))}")
    paths = {entry.source: source_path(entry, source_dir, overrides) for entry in mixture.sources}
    tok = load_tokenizer(tokenizer) if tokenizer else None
    check_embedding(model, cache_dir, resolve_device(device))
    decontam, bench = decontamination(mixture, decontaminate_dir), None
    if decontam is not None:
        bench = load_benchmarks(decontam.benchmarks, Path(decontam.benchmarks_dir) if decontam.benchmarks_dir else None)

    warnings: list[str] = []
    per_source: dict[str, dict] = {}
    loaded: dict[str, list[Record]] = {}
    for entry in tqdm(mixture.sources, desc="load", unit="source", disable=not progress):
        spec = entry_spec(entry)
        got = load(spec, paths[entry.source], on_error)
        if got.bad_rows == got.rows_in:
            raise DataError(f"source {entry.source}: every row is bad ({got.bad_rows}; first: {got.bad_examples[0]})")
        if got.bad_rows:
            warnings.append(f"source {entry.source}: skipped {got.bad_rows} bad rows of {got.rows_in} "
                            f"(--on-error skip; first: {got.bad_examples[0]})")
        loaded[entry.source] = got.records
        per_source[entry.source] = {
            "origin": got.origin, "licence": spec.licence, "llm_generated": spec.llm_generated,
            "rows_in": got.rows_in, "bad_rows": got.bad_rows, "records": len(got.records),
        }
        if got.bad_examples:
            per_source[entry.source]["bad_row_examples"] = got.bad_examples

    # Per-record rules, then exact duplicates across the mixture in mixture order (first seen wins).
    drop_counts: Counter = Counter()
    dropped: list[tuple[Record, str]] = []
    rules = filter_rules(licence)
    selected: list[Record] = []
    for entry in tqdm(mixture.sources, desc="filter+select", unit="source", disable=not progress):
        counts: Counter = Counter()
        available, chosen = filter_select(entry, loaded[entry.source], rules, mixture.seed, counts, dropped)
        drop_counts.update(counts)
        selected.extend(chosen)
        per_source[entry.source].update(
            {"dropped": dict(sorted(counts.items())), "available": available, "percent": entry.percent, "rows_requested": entry.rows,
             "selected": len(chosen)})
        if not chosen:
            warnings.append(f"source {entry.source}: contributes 0 rows ({len(loaded[entry.source])} records, "
                            f"{available} after filters)")
    if not selected:
        raise DataError(f"mixture {mixture.name} selects 0 rows: " + ", ".join(
            f"{name} {stats['records']} records, {stats['available']} after filters"
            for name, stats in per_source.items()))

    dedup = near_dedup([r.prompt_text for r in selected], model, mixture.threshold, near_dedup_method, device,
                       cache_dir, progress, embed_kept=bench is not None)
    keep, removals = dedup.keep, dedup.removals
    out = [r for r, k in zip(selected, keep) if k]
    pairs = [pair_row(selected, r) for r in removals]
    near = Counter(selected[r.removed].source for r in removals)
    stages = {"near_dedup": {**dedup.stats, "removed": len(removals), "out": len(out)}}

    found = None
    if bench is not None:
        bench_vectors = embed(bench.texts, model, progress=progress, cache_dir=cache_dir, device=dedup.stats["device"])
        rows = [TrainingRow(r.id, r.prompt_text, r.source) for r in out]
        found = decontaminate(rows, dedup.vectors[keep], bench, bench_vectors, decontam.threshold)
        out = [r for r, k in zip(out, found.keep) if k]
        stages["decontaminate"] = {"removed": found.summary["removed"], "out": len(out)}
        if not out:
            raise DataError(f"mixture {mixture.name}: decontamination removed every one of its "
                            f"{found.summary['removed']} rows")
    kept_per_source = Counter(r.source for r in out)
    for name, stats in per_source.items():
        stats.update(near_duplicates=near[name], out=kept_per_source[name])
        if found is not None:
            stats["contaminated"] = found.summary["removed_per_source"].get(name, 0)

    manifest = {
        "tool": {"name": "nextai-data", "version": metadata.version("axolotl-nextai")},
        "mixture": mixture.model_dump(exclude_defaults=True),
        "options": {"on_error": on_error, "license": licence, "embedding_model": model,
                    "embedding_model_resolved": Path(resolve_model(model)).name, "threshold": mixture.threshold},
        "sources": per_source,
        "stages": {
            "load": {"rows_in": sum(s["rows_in"] for s in per_source.values()),
                     "bad_rows": sum(s["bad_rows"] for s in per_source.values()),
                     "records": sum(len(v) for v in loaded.values())},
            "filter": {"dropped": dict(sorted(drop_counts.items())),
                       "out": sum(s["available"] for s in per_source.values())},
            "select": {"out": len(selected)},
            **stages,
        },
        "licences": dict(sorted(Counter(f"{r.licence} ({licence_class(r.licence)})" for r in out).items())),
        "llm_generated_rows": sum(1 for r in out if r.llm_generated),
        "warnings": warnings,
    }
    if found is not None:
        manifest["decontamination"] = found.summary
    if tok is not None:
        manifest["tokens"] = token_stats(out, tok, tokenizer)
    return Build(out, manifest, pairs, dropped, found.pairs if found else None, warnings)


def pair_row(records: list[Record], removal: Removal) -> dict:
    kept, removed = records[removal.kept], records[removal.removed]
    return {"score": round(removal.score, 4), "kept_id": kept.id, "kept": kept.prompt_text,
            "removed_id": removed.id, "removed": removed.prompt_text}


def token_stats(records: list[Record], tok, tokenizer: str) -> dict:
    """Token counts of each row as the recipe trains on it (Alpaca prompt + output + EOS), by `tok`, the
    tokenizer loaded from `tokenizer`."""
    texts = [render_prompt(r.instruction, r.input) + r.output for r in records]
    lengths = sorted(len(ids) + 1 for ids in tok(texts, add_special_tokens=True)["input_ids"]) if texts else [0]
    return {
        "tokenizer": Path(tokenizer).name, "total": sum(lengths), **length_stats(lengths),
        "rows_over_1024": sum(1 for n in lengths if n > 1024),
    }
