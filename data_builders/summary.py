"""`nextai-data inspect`: what a built JSONL holds, read back through the same row reader as the sources."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from data_builders.sources.base import check_row, read_file

ALPACA_COLUMNS = {"instruction": str, "input": str, "output": str}


def summarise(path: Path) -> dict:
    """Rows, rows per `source` (or "unknown" for plain Alpaca files), and per-field length stats."""
    rows = []
    for where, row in read_file(path)[0]:
        if isinstance(row, Exception):
            raise row
        check_row(row, ALPACA_COLUMNS, where)
        rows.append(row)
    lengths = {}
    for key in ALPACA_COLUMNS:
        values = sorted(len(r[key]) for r in rows)
        lengths[key] = {"mean": round(statistics.fmean(values), 1), "median": statistics.median(values),
                        "p95": values[int(0.95 * (len(values) - 1))], "max": values[-1]}
    by_source = Counter(r.get("source", "unknown") for r in rows)
    return {"rows": len(rows), "by_source": dict(sorted(by_source.items())), "lengths": lengths}
