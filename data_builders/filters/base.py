"""The filter runner: what every rule shares (the loop, the per-reason counts, the kept-aside drops).

A filter is any callable `Record -> str | None` with a `name`: None keeps the record, a string is the
snake_case reason it is dropped for. Rules stay a few lines; counting lives here once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from data_builders.records import Record

Filter = Callable[[Record], "str | None"]


def run_filters(
    records: Iterable[Record],
    filters: list[Filter],
    counts: Counter,
    dropped: list[tuple[Record, str]] | None = None,
) -> list[Record]:
    """Records that pass every filter; adds one count per drop reason, and the drop itself to `dropped`."""
    kept = []
    for record in records:
        for rule in filters:
            reason = rule(record)
            if reason:
                counts[reason] += 1
                if dropped is not None:
                    dropped.append((record, reason))
                break
        else:
            kept.append(record)
    return kept
