from pathlib import Path

import pytest
import yaml

from data_builders.errors import DataError
from data_builders.mixing import (
    Entry,
    load_mixture,
    mixture_names,
    seeded_sample,
    selected_count,
    wanted_count,
)
from data_builders.records import Record


@pytest.mark.parametrize(
    ("percent", "available", "expected"),
    [
        (100, 20605, 20605),
        (0, 50, 0),
        (20, 7, 1),
        (10, 5, 1),
        (12.5, 4, 1),
        (5, 9, 0),
        (33.3, 1000, 333),
    ],
)
def test_selected_count_rounds_halves_up(percent, available, expected):
    assert selected_count(percent, available) == expected


def test_selected_count_is_within_one_row_everywhere():
    for available in range(0, 400, 7):
        for percent in (0.1, 1, 5, 10, 20, 33.3, 50, 66.6, 99.9, 100):
            assert abs(selected_count(percent, available) - percent * available / 100) <= 0.5


def test_select_is_seeded_exact_and_keeps_order():
    records = [
        Record(
            instruction=f"q{i}",
            input="",
            output="a",
            source="dolly",
            row=i,
            licence="MIT",
            llm_generated=False,
        )
        for i in range(200)
    ]
    a = seeded_sample(records, 40, seed=1, source="dolly")
    assert len(a) == 40 and a == seeded_sample(records, 40, seed=1, source="dolly")
    assert [r.row for r in a] == sorted(r.row for r in a)
    assert a != seeded_sample(records, 40, seed=2, source="dolly")


def test_wanted_count_by_percent_or_rows():
    assert wanted_count(Entry(source="dolly", percent=20), 200) == 40
    assert wanted_count(Entry(source="flan_v2_cot", rows=2000), 183_848) == 2000
    assert wanted_count(Entry(source="flan_v2_cot", rows=2000), 12) == 12  # the shipped sample has fewer


def test_every_shipped_mixture_validates():
    assert mixture_names() == [f"v{i}" for i in range(1, 8)]
    for name in mixture_names():
        m = load_mixture(name)
        assert m.name == name and all(e.rows is not None or 0 <= e.percent <= 100 for e in m.sources)


def test_table7_mixtures():
    """The mixtures of Table 7: v5 = v2 + LIMA; v4 doubles FaithDial and Multi-News; v7 = v6 + FLAN CoT 2k."""
    shares = {
        name: {e.source: e.percent if e.rows is None else e.rows for e in load_mixture(name).sources}
        for name in mixture_names()
    }
    assert shares["v1"] == {"open_platypus": 100}
    assert (
        shares["v2"]
        == shares["v3"]
        == {"dolly": 100, "open_platypus": 100, "codegen": 10, "faithdial": 20, "multi_news": 10}
    )
    assert shares["v4"] == {**shares["v2"], "faithdial": 40, "multi_news": 20}
    assert shares["v5"] == {**shares["v2"], "lima": 100}
    assert shares["v6"] == {"dolly": 100, "open_platypus": 100, "codegen": 10, "lima": 100}
    assert shares["v7"] == {**shares["v6"], "flan_v2_cot": 2000}


def write(tmp_path, spec) -> str:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            [{"source": "dolly", "percent": 150}],
            r"`sources\.0\.percent`: Input should be less than or equal to 100",
        ),
        (
            [{"source": "dolly", "percent": -1}],
            r"`sources\.0\.percent`: Input should be greater than or equal to 0",
        ),
        ([{"source": "dolly"}], r"`sources\.0`: .*needs exactly one of percent or rows"),
        ([{"source": "dolly", "percent": 10, "rows": 5}], r"needs exactly one of percent or rows"),
        ([{"source": "nope", "percent": 10}], r"`sources\.0`: .*unknown source 'nope'"),
        ([{"source": "mine", "percent": 10, "path": "x.jsonl"}], r"`sources\.0`: .*needs fields"),
        (
            [{"source": "dolly", "percent": 10, "fields": {"instruction": "a", "output": "b"}}],
            r"fixed schema",
        ),
        (
            [{"source": "codegen", "percent": 10, "fields": {"prompt": "a"}}],
            r"must map instruction and output",
        ),
    ],
)
def test_bad_mixture_names_the_key(tmp_path, sources, message):
    with pytest.raises(DataError, match=message):
        load_mixture(write(tmp_path, {"name": "x", "seed": 1, "sources": sources}))


def test_unknown_mixture_and_missing_file():
    with pytest.raises(DataError, match=r"unknown mixture 'v9' \(shipped: v1, v2"):
        load_mixture("v9")
    with pytest.raises(DataError, match="mixture file not found"):
        load_mixture(str(Path("/nonexistent/mix.yaml")))
