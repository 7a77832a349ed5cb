"""Source adapters, one module per dataset of the paper's Table 1 (plus guanaco, which Platypus contains), and
the hand-written sample rows shipped for each."""

from importlib import resources
from pathlib import Path

from data_builders.records import Record
from data_builders.sources import (
    alpaca_2k,
    codegen,
    dolly,
    faithdial,
    flan_v2_cot,
    guanaco,
    lima,
    multi_news,
    open_platypus,
)
from data_builders.sources.base import SourceSpec, find_source_file, load

SOURCES: dict[str, SourceSpec] = {
    m.SPEC.name: m.SPEC
    for m in (open_platypus, dolly, codegen, faithdial, multi_news, lima, flan_v2_cot, alpaca_2k, guanaco)
}


def sample_dir() -> Path:
    """The hand-written rows shipped in the package, one file per source in its original schema."""
    return Path(str(resources.files("data_builders").joinpath("sample")))


def sample_records() -> list[Record]:
    """Every record of the shipped sample, source by source in name order: demos and the tiny tokenizer use
    it."""
    return [
        r
        for name in sorted(SOURCES)
        for r in load(SOURCES[name], find_source_file(name, sample_dir())).records
    ]
