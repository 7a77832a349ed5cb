"""`nextai-data inspect`: what a built JSONL holds, read back through the same row reader as the sources."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from data_builders.errors import DataError
from data_builders.sources.base import read_rows

ALPACA_COLUMNS = {"instruction": str, "input": str, "output": str}


def length_stats(values: list[int]) -> dict:
    """Mean (to 0.1), median, 95th percentile (nearest rank below) and max of `values`, sorted and not
    empty."""
    return {
        "mean": round(statistics.fmean(values), 1),
        "median": statistics.median(values),
        "p95": values[int(0.95 * (len(values) - 1))],
        "max": values[-1],
    }


def summarise(path: Path) -> dict:
    """Rows, rows per `source` (or "unknown" for plain Alpaca files), and per-field length stats."""
    rows, _ = read_rows(path, ALPACA_COLUMNS)
    if not rows:
        raise DataError(f"{path}: no rows")
    lengths = {}
    for key in ALPACA_COLUMNS:
        lengths[key] = length_stats(sorted(len(r[key]) for r in rows))
    by_source = Counter(r.get("source", "unknown") for r in rows)
    return {"rows": len(rows), "by_source": dict(sorted(by_source.items())), "lengths": lengths}
