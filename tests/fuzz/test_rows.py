"""Rows of every format a source, a benchmark or a built file can come in, read by `nextai-data inspect` (the
same reader as `build`, `decontaminate`, the training plugin's row check and `nextai-eval --heldout`)."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from borders import run_at_border, workdir
from hypothesis import given
from hypothesis import strategies as st

from data_builders.nextai_data import main

pytestmark = pytest.mark.fuzz  # make fuzz runs these with a larger budget

KEYS = st.sampled_from(["instruction", "input", "output", "source", "id"]) | st.text(max_size=4)
SCALARS = (
    st.text(max_size=12)
    | st.sampled_from(["", " ", "\u200b\ufeff", "\x00", "Ω≈ç"])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.none()
    | st.booleans()
)
VALUES = (
    SCALARS
    | st.lists(st.text(max_size=4), max_size=3)
    | st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)
)
ROWS = st.dictionaries(KEYS, VALUES, max_size=6)
GOOD = st.fixed_dictionaries(
    {"instruction": st.text(max_size=12), "input": st.text(max_size=6), "output": st.text(max_size=12)}
)


def mutate(line: str, how: str, depth: int) -> str:
    """One way a hostile or broken writer gets a JSON line wrong."""
    if how == "surrogate":
        return line.replace('"', '"\\ud800', 2) if '"' in line else line
    if how == "duplicate":
        return '{"instruction": "x", ' + line[1:] if line.startswith("{") and len(line) > 2 else line
    if how == "nan":
        return line.replace("}", ', "x": NaN}', 1)
    if how == "deep":
        return '{"instruction": ' + "[" * depth + "]" * depth + "}"
    if how == "cut":
        return line[: len(line) // 2]
    return line


LINES = st.tuples(
    GOOD | ROWS,
    st.sampled_from(["", "", "surrogate", "duplicate", "nan", "deep", "cut"]),
    st.integers(1, 5000),
).map(lambda t: mutate(json.dumps(t[0]), t[1], t[2]))


@given(lines=st.lists(LINES | st.binary(max_size=20).map(lambda b: b.decode("latin-1")), max_size=6))
def test_jsonl_rows(lines):
    with workdir() as folder:
        data = "\n".join(lines).encode("utf-8", errors="surrogateescape")
        (folder / "t.jsonl").write_bytes(data)
        run_at_border(main, ["inspect", str(folder / "t.jsonl")], folder)


@given(
    value=st.lists(GOOD | ROWS, max_size=4) | VALUES,
    how=st.sampled_from(["", "surrogate", "duplicate", "nan"]),
)
def test_json_file(value, how):
    with workdir() as folder:
        (folder / "t.json").write_text(mutate(json.dumps(value), how, 0), "utf-8")
        run_at_border(main, ["inspect", str(folder / "t.json")], folder)


@given(
    header=st.lists(KEYS, max_size=4),
    rows=st.lists(st.lists(st.text(max_size=8), max_size=5), max_size=4),
    tail=st.binary(max_size=8),
)
def test_csv_rows(header, rows, tail):
    with workdir() as folder:
        text = io.StringIO()
        writer = csv.writer(text)
        for row in [header, *rows]:
            writer.writerow(row)
        (folder / "t.csv").write_bytes(text.getvalue().encode("utf-8", errors="surrogateescape") + tail)
        run_at_border(main, ["inspect", str(folder / "t.csv")], folder)


@given(
    columns=st.dictionaries(
        KEYS,
        st.lists(st.text(max_size=6) | st.none(), min_size=2, max_size=2)
        | st.lists(st.integers(-5, 5), min_size=2, max_size=2),
        max_size=4,
    ),
    corrupt=st.booleans(),
)
def test_parquet_rows(columns, corrupt):
    with workdir() as folder:
        buffer = io.BytesIO()
        pq.write_table(
            pa.table(columns) if columns else pa.table({"instruction": pa.array([], pa.string())}), buffer
        )
        data = buffer.getvalue()
        (folder / "t.parquet").write_bytes(data[: len(data) // 2] + data[-8:] if corrupt else data)
        run_at_border(main, ["inspect", str(folder / "t.parquet")], folder)
