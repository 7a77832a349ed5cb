"""The shared loader: every file format gives the same records, and each kind of bad input names file:line."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_builders.errors import DataError, RowError
from data_builders.sources import SOURCES, dolly, sample_dir
from data_builders.sources.base import find_source_file, load

ROWS = [
    {"instruction": "Name a fish.", "context": "", "response": "Tope", "category": "open_qa"},
    {"instruction": "When?", "context": "In 1921.", "response": "1921", "category": "closed_qa"},
]


def test_jsonl_json_parquet_csv_give_the_same_records(tmp_path, jsonl):
    expected = load(dolly.SPEC, jsonl("dolly", ROWS)).records
    (tmp_path / "a.json").write_text(json.dumps(ROWS))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "b.parquet")
    with open(tmp_path / "c.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    for name in ("a.json", "b.parquet", "c.csv"):
        assert load(dolly.SPEC, tmp_path / name).records == expected, name


def test_source_dir_lookup_and_missing_file(tmp_path, jsonl):
    path = jsonl("dolly", ROWS)
    assert find_source_file("dolly", tmp_path) == path
    with pytest.raises(
        DataError, match=r"missing source file: no lima\{\.jsonl\|\.json\|\.parquet\|\.csv\|\.jsonl\.gz\}"
    ):
        find_source_file("lima", tmp_path)
    with pytest.raises(DataError, match="missing source file"):
        load(dolly.SPEC, tmp_path / "nope.jsonl")


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"instruction": "x", \n')
    with pytest.raises(RowError, match=r"dolly.jsonl:2: malformed JSON"):
        load(dolly.SPEC, path)


def test_missing_field_and_wrong_type(jsonl):
    bad = jsonl("dolly", [ROWS[0], {"instruction": "x", "context": "", "category": "c"}])
    with pytest.raises(
        RowError, match=r"dolly.jsonl:2: missing required field 'response' \(row has: category"
    ):
        load(dolly.SPEC, bad)
    wrong = jsonl("dolly", [{**ROWS[0], "instruction": 42}])
    with pytest.raises(RowError, match=r"dolly.jsonl:1: field 'instruction' must be str, got int"):
        load(dolly.SPEC, wrong)


def test_list_column_rejects_non_string_items(jsonl):
    path = jsonl("lima", [{"conversations": ["hi", 3], "source": "x"}])
    with pytest.raises(
        RowError, match=r"lima.jsonl:1: field 'conversations' must be a list of str, got list"
    ):
        load(SOURCES["lima"], path)


def test_empty_file(tmp_path):
    (tmp_path / "dolly.jsonl").write_text("\n  \n")
    with pytest.raises(DataError, match=r"dolly.jsonl: empty file"):
        load(dolly.SPEC, tmp_path / "dolly.jsonl")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + b'{"instruction": "caf\xe9"}\n')
    with pytest.raises(RowError, match=r"dolly.jsonl:2: not UTF-8 \(byte 0xe9"):
        load(dolly.SPEC, path)


def test_skip_counts_bad_rows_and_keeps_row_indices(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_bytes(b"{broken\n" + json.dumps(ROWS[0]).encode() + b"\n\xff\n" + json.dumps(ROWS[1]).encode())
    got = load(dolly.SPEC, path, on_error="skip")
    assert (got.rows_in, got.bad_rows) == (4, 2)
    assert [r.row for r in got.records] == [1, 3]
    assert got.bad_examples[0].startswith(f"{path}:1: malformed JSON")


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_shipped_sample_file_loads_through_its_adapter(name):
    got = load(SOURCES[name], find_source_file(name, sample_dir()))
    assert got.bad_rows == 0 and got.records


def test_a_gzipped_jsonl_reads_as_the_jsonl_inside_and_a_broken_one_is_named(tmp_path):
    import gzip

    from data_builders.sources.base import read_rows

    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n'))
    with pytest.raises(DataError, match=r"rows.jsonl.gz:2: missing required field 'output'"):
        read_rows(path, {"instruction": str, "output": str})
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="rows.jsonl.gz: not a readable gzip file"):
        read_rows(path, {"instruction": str})


def test_an_optional_column_is_checked_only_when_present(tmp_path):
    from data_builders.sources.base import read_rows

    path = tmp_path / "rows.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d", "input": 3}\n')
    with pytest.raises(DataError, match=r"rows.jsonl:2: field 'input' must be str, got int"):
        read_rows(path, {"instruction": str, "output": str}, optional={"input": str})
