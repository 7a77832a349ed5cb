"""Source adapters, one module per dataset of the paper's Table 1 (plus guanaco, which Platypus contains)."""

from data_builders.sources import (
    alpaca_2k_test,
    codegen,
    dolly,
    faithdial,
    flan_v2_cot,
    guanaco,
    lima,
    multi_news,
    open_platypus,
)
from data_builders.sources.base import SourceSpec

SOURCES: dict[str, SourceSpec] = {
    m.SPEC.name: m.SPEC
    for m in (open_platypus, dolly, codegen, faithdial, multi_news, lima, flan_v2_cot, alpaca_2k_test, guanaco)
}
