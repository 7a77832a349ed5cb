"""Filtering Platypus: keep the seven human-written subsets of Open-Platypus (20,605 rows), drop the rest.

airoboros and leetcode_ne were written by GPT-4 (the challenge allowed human-written data only); scibench is
human-written but the paper left it out. Rows of other sources pass untouched.
"""

from __future__ import annotations

from data_builders.records import Record

KEEP = {"MATH/PRM-800K", "scienceqa", "reclor", "theoremqa", "tigerbot-kaggle", "ARB", "guanaco"}
REASONS = {"airoboros": "llm_generated", "leetcode_ne": "llm_generated", "scibench": "paper_choice"}


class PlatypusSubsets:
    name = "platypus_subsets"

    def __call__(self, record: Record) -> str | None:
        if record.source != "open_platypus" or record.sub_source in KEEP:
            return None
        return REASONS.get(record.sub_source, "unknown_subset")
