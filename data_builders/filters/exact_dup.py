"""Drop a record whose normalised instruction + input was seen before (first seen wins, across the mixture).

Normalised: case-folded, whitespace runs collapsed. Platypus' merge step keys on instruction + input too.
Stateful: one instance per build, fed in mixture order.
"""

from __future__ import annotations

import hashlib

from data_builders.records import Record


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


class ExactDuplicate:
    name = "exact_duplicate"

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def __call__(self, record: Record) -> str | None:
        key = hashlib.sha1(f"{normalise(record.instruction)}\x00{normalise(record.input)}".encode()).digest()
        if key in self.seen:
            return self.name
        self.seen.add(key)
        return None
