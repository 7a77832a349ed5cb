"""Decontamination: remove training rows whose MiniLM cosine to any benchmark test text is at least 0.8.

Platypus removed the nearest training item of each benchmark test question at cosine >= 0.8. Here every row at
or over the threshold to *any* benchmark text goes, so no kept row is that close to a test item (a question
copied twice loses both copies). Rows are compared by instruction + input, as near-dedup compares them, with
the same model; inside a build the vectors near-dedup computed are reused. One matrix product per block of
rows x benchmark texts (`near_dup.nearest`), no loop over rows.

Each removed row is reported once, with its nearest benchmark text; the per-benchmark counts attribute it to
that benchmark, so they add up to the rows removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_builders.benchmarks import BenchmarkTexts, load_benchmarks
from data_builders.dedup.embed import (
    DEFAULT_MODEL,
    check_embedding,
    embed,
    openvino_fallback,
    resolve_device,
    resolve_encoder,
)
from data_builders.dedup.near_dup import nearest
from data_builders.errors import DataError
from data_builders.manifest import manifest_head
from data_builders.records import prompt_text
from data_builders.sources.base import read_rows

THRESHOLD = 0.8  # Platypus: a training item at cosine >= 0.8 to a benchmark test question is contamination


@dataclass(frozen=True)
class TrainingRow:
    id: str
    text: str  # instruction + input
    source: str


@dataclass
class Contamination:
    keep: np.ndarray  # one bool per training row
    pairs: list[dict]  # one per removed row: its text, its nearest benchmark text, that benchmark, the cosine
    summary: dict  # threshold, per benchmark (origin, items, texts, removed), removed per source


def decontaminate(
    rows: list[TrainingRow],
    vectors: np.ndarray,
    bench: BenchmarkTexts,
    bench_vectors: np.ndarray,
    threshold: float = THRESHOLD,
) -> Contamination:
    """Compare `rows` with the benchmark texts, both as unit-norm vectors of the same model."""
    at, score = nearest(vectors, bench_vectors) if rows else (np.zeros(0, np.int64), np.zeros(0, np.float32))
    keep = score < threshold
    removed = np.flatnonzero(~keep)
    pairs = [
        {
            "score": round(float(score[i]), 4),
            "training_id": rows[i].id,
            "training_text": rows[i].text,
            "benchmark": bench.benchmark[at[i]],
            "benchmark_id": bench.item[at[i]],
            "benchmark_text": bench.texts[at[i]],
        }
        for i in removed
    ]
    per_benchmark = Counter(p["benchmark"] for p in pairs)
    summary = {
        "threshold": threshold,
        "benchmarks": {
            name: {**stats, "removed": per_benchmark[name]} for name, stats in bench.stats.items()
        },
        "removed": len(pairs),
        "removed_per_source": dict(sorted(Counter(rows[i].source for i in removed).items())),
    }
    return Contamination(keep, pairs, summary)


@dataclass
class Decontaminated:
    """`nextai-data decontaminate`'s result: the kept rows as read, the removed pairs, the manifest."""

    rows: list[dict]
    pairs: list[dict]
    manifest: dict


def read_training_rows(path: Path) -> tuple[list[dict], dict]:
    """Alpaca rows of a JSONL (or json / parquet / csv): `instruction` and `output` str, `input` str if
    present; and the file's origin (name, sha256)."""
    return read_rows(path, {"instruction": str, "output": str}, optional={"input": str})


def decontaminate_file(
    path: Path,
    names: list[str],
    benchmarks_dir: Path | None,
    threshold: float = THRESHOLD,
    model: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    progress: bool = False,
    device: str = "auto",
    encoder: str = "auto",
) -> Decontaminated:
    """Decontaminate a built (or any Alpaca) file; rows keep every field they had, in their order. `device`
    and `encoder` as `build`'s (dedup/embed.py): auto is OpenVINO fp32 on a CPU, torch on a GPU."""
    device = resolve_device(device)
    fallback, encoder = openvino_fallback(encoder, device), resolve_encoder(encoder, device)
    rows, origin = read_training_rows(path)
    bench = load_benchmarks(names, benchmarks_dir)  # before the slow part, so a missing file fails at once
    check_embedding(model, cache_dir, device, encoder)
    training = [
        TrainingRow(
            str(r.get("id", f"row {i}")),
            prompt_text(r["instruction"], r.get("input", "")),
            str(r.get("source", "unknown")),
        )
        for i, r in enumerate(rows)
    ]
    vectors = embed(
        [r.text for r in training],
        model,
        progress=progress,
        cache_dir=cache_dir,
        device=device,
        encoder=encoder,
    )
    bench_vectors = embed(
        bench.texts, model, progress=progress, cache_dir=cache_dir, device=device, encoder=encoder
    )
    found = decontaminate(training, vectors, bench, bench_vectors, threshold)
    if not found.keep.any():  # as `build` refuses it: an empty training file is never what was wanted
        raise DataError(
            f"{path}: decontamination at cosine >= {threshold:g} would remove every one of its "
            f"{len(rows)} rows; is --threshold right (Platypus: {THRESHOLD})?"
        )
    manifest = {
        **manifest_head("nextai-data decontaminate", model),
        "input": {**origin, "rows": len(rows)},
        "decontamination": found.summary,
    }
    manifest["options"].update(device=device, encoder=encoder)
    if fallback:
        manifest["options"]["encoder_fallback"] = fallback
    return Decontaminated([r for r, k in zip(rows, found.keep, strict=True) if k], found.pairs, manifest)
