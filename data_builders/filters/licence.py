"""`--licence any|commercial|research`: keep only records whose licence allows that use.

Each licence string the adapters record falls in one class: commercial (permissive: MIT, Apache, CC BY,
CC BY-SA), research (non-commercial terms, or mixed per-task licences as in FLAN), or unknown (codegen,
user sources that do not say). `commercial` keeps the first class; `research` keeps the first two.
"""

from __future__ import annotations

from data_builders.records import Record

CLASSES = {
    "MIT": "commercial",
    "Apache-2.0": "commercial",
    "CC-BY-4.0": "commercial",
    "CC-BY-SA-3.0": "commercial",
    "CC-BY-NC-4.0": "research",
    "CC-BY-NC-SA-4.0": "research",
    "non-commercial": "research",
    "mixed": "research",
}
ALLOWED = {
    "any": {"commercial", "research", "unknown"},
    "commercial": {"commercial"},
    "research": {"commercial", "research"},
}


def licence_class(licence: str) -> str:
    return CLASSES.get(licence, "unknown")


class Licence:
    name = "licence"

    def __init__(self, use: str = "any") -> None:
        if use not in ALLOWED:
            raise ValueError(f"licence use must be one of {sorted(ALLOWED)}, got {use!r}")
        self.allowed = ALLOWED[use]

    def __call__(self, record: Record) -> str | None:
        kind = licence_class(record.licence)
        if kind in self.allowed:
            return None
        return "licence_unknown" if kind == "unknown" else "licence_noncommercial"
