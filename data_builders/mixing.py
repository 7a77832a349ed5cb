"""Mixtures as data: the YAML schema (pydantic), where each entry's rows come from, and exact-percent
selection.

A mixture lists sources with the percentage of each source's rows (after filtering) that goes in, or a fixed
number of rows (Table 7's "FLAN-v2 CoT 2k"), and one seed. Selection is a seeded sample of exactly
round(percent x rows / 100) rows (halves round up), kept in original order: the percentage is exact to one
row, unlike interleave probabilities. A row count larger than the source has (the small shipped sample) takes
every row, and the manifest shows both numbers.
"""

from __future__ import annotations

import random
from fractions import Fraction
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_builders.benchmarks import BENCHMARKS, check_names
from data_builders.decontaminate import THRESHOLD as DECONTAMINATION_THRESHOLD
from data_builders.dedup.near_dup import THRESHOLD
from data_builders.errors import DataError, validation_problem
from data_builders.files import MISSING, file_problem, read_text
from data_builders.records import Record
from data_builders.sources import SOURCES, codegen
from data_builders.sources.base import SourceSpec
from data_builders.sources.mapped import check_fields, mapped_spec
from data_builders.yaml_text import load_yaml

MAPPED_BUILTINS = {"codegen": codegen.spec}


# strict: `percent: true` or `seed: "3"` is an error, not 1 and 3; `.nan` and `.inf` are errors too.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Entry(BaseModel):
    """One source of a mixture; a user-defined source also gives `hub_id` or `path`, and `fields`."""

    model_config = STRICT
    source: str
    percent: float | None = Field(default=None, ge=0, le=100)
    rows: int | None = Field(default=None, ge=0)  # a fixed number of rows instead of a percentage
    fields: dict[str, str] | None = None
    path: str | None = None  # local file in the source's original schema (relative to the working dir)
    hub_id: str | None = None
    revision: str = "main"
    config: str | None = None  # the hub dataset's config (`datasets`' name), if it has several
    split: str = "train"
    licence: str = "unknown"
    llm_generated: bool | None = None

    @model_validator(mode="after")
    def known_or_defined(self) -> Entry:
        if (self.percent is None) == (self.rows is None):
            raise ValueError(f"source '{self.source}' needs exactly one of percent or rows")
        if self.source not in SOURCES and not (self.hub_id or self.path):
            raise ValueError(
                f"unknown source '{self.source}' (known: {', '.join(sorted(SOURCES))}); "
                "a user-defined source needs hub_id or path, and fields"
            )
        if self.source not in SOURCES and not self.fields:
            raise ValueError(
                f"user-defined source '{self.source}' needs fields (instruction, output[, input])"
            )
        if self.fields:
            check_fields(self.source, self.fields)
        if self.fields and self.source in SOURCES and self.source not in MAPPED_BUILTINS:
            raise ValueError(
                f"source '{self.source}' has a fixed schema; fields apply to codegen and user-defined sources"
            )
        return self


class Decontaminate(BaseModel):
    """The `decontaminate:` block: remove output rows at cosine >= `threshold` to a benchmark test item."""

    model_config = STRICT
    threshold: float = Field(default=DECONTAMINATION_THRESHOLD, gt=0, le=1)
    benchmarks: list[str] = Field(default_factory=lambda: list(BENCHMARKS))  # lm-eval task names
    benchmarks_dir: str | None = None  # DIR/<task>.jsonl|.json|.parquet|.csv; None reads the hub

    @field_validator("benchmarks")
    @classmethod
    def known(cls, names: list[str]) -> list[str]:
        try:
            return check_names(names)
        except DataError as err:  # pydantic reports ValueErrors with the key they came from
            raise ValueError(str(err)) from None


class Mixture(BaseModel):
    model_config = STRICT
    name: str
    seed: int
    threshold: float = Field(default=THRESHOLD, gt=0, le=1)
    sources: list[Entry] = Field(min_length=1)
    decontaminate: Decontaminate | None = None  # off unless given (or `build --decontaminate-dir`)

    @model_validator(mode="after")
    def unique_sources(self) -> Mixture:
        names = [e.source for e in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"a source is listed twice: {names}")
        return self


def mixture_names() -> list[str]:
    folder = resources.files("data_builders").joinpath("mixtures")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_mixture(name_or_path: str) -> Mixture:
    """A shipped mixture by name (`v5`) or any YAML file; errors name the file and the bad key."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if file_problem(path) == MISSING:
            raise DataError(f"mixture file not found: {path}")
        text, where = read_text(path, "mixture "), str(path)
    elif name_or_path in mixture_names():
        text = resources.files("data_builders").joinpath(f"mixtures/{name_or_path}.yaml").read_text("utf-8")
        where = f"mixture {name_or_path}"
    else:
        raise DataError(
            f"unknown mixture '{name_or_path}' (shipped: {', '.join(mixture_names())}; or give a .yaml path)"
        )
    try:
        return Mixture.model_validate(load_yaml(text, where))
    except ValidationError as err:
        raise DataError(f"{where}: {validation_problem(err)}") from None


def entry_spec(entry: Entry) -> SourceSpec:
    """The adapter an entry reads through: a built-in, codegen with its mapping, or a user-defined one."""
    if entry.source in MAPPED_BUILTINS and entry.fields:
        return MAPPED_BUILTINS[entry.source](entry.fields)
    if entry.source in SOURCES:
        return SOURCES[entry.source]
    return mapped_spec(
        entry.source,
        entry.fields,
        hub_id=entry.hub_id or "",
        revision=entry.revision,
        config=entry.config,
        split=entry.split,
        licence=entry.licence,
        llm_generated=entry.llm_generated,
    )


def selected_count(percent: float, available: int) -> int:
    """round(percent x available / 100), halves up, in exact arithmetic (no float drift at .5)."""
    exact = Fraction(str(percent)) * available / 100
    return int(exact + Fraction(1, 2))


def wanted_count(entry: Entry, available: int) -> int:
    """How many of `available` filtered rows the entry takes: its percentage, or its row count (at most
    all)."""
    if entry.rows is not None:
        return min(entry.rows, available)
    return selected_count(entry.percent, available)


def seeded_sample(records: list[Record], n: int, seed: int, source: str) -> list[Record]:
    """Exactly `n` records, a seeded sample per source, in their original order."""
    chosen = sorted(random.Random(f"{seed}:{source}").sample(range(len(records)), n))
    return [records[i] for i in chosen]
