"""The readers' refusals, one mechanism each: regular files only (files.py), strict JSON (json_text.py),
bounded YAML (yaml_text.py), finite numbers (numbers.py), blank text (records.is_blank)."""

import json
import os
import time

import click
import pytest
from click.testing import CliRunner

from data_builders.errors import DataError, RowError
from data_builders.files import file_problem, read_input
from data_builders.json_text import MAX_DEPTH, dumps, finite_or_null, loads
from data_builders.numbers import FiniteFloatRange, non_finite
from data_builders.records import is_blank
from data_builders.yaml_text import MAX_VALUES, load_yaml


def test_what_a_path_is_when_it_is_no_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("loop", tmp_path / "loop")
    os.symlink("/dev/null", tmp_path / "device")
    (tmp_path / "file").write_text("x")
    assert {name: file_problem(tmp_path / name) for name in ("fifo", "loop", "device", "file", "none")} == {
        "fifo": "is a FIFO (named pipe)",
        "loop": "is a symlink loop",
        "device": "is a character device",
        "file": None,
        "none": "does not exist",
    }
    assert file_problem(tmp_path) == "is a folder"


def test_reading_a_fifo_is_refused_at_once_and_a_file_over_its_bound_too(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(DataError, match="fifo: is a FIFO"):
        read_input(tmp_path / "fifo")
    assert time.monotonic() - started < 5  # a plain open() blocks until a writer comes
    (tmp_path / "big.yml").write_bytes(b"x" * 100)
    with pytest.raises(DataError, match="holds 100 bytes, more than the 10"):
        read_input(tmp_path / "big.yml", limit=10)
    assert read_input(tmp_path / "big.yml") == b"x" * 100


@pytest.mark.parametrize(
    "text, refusal",
    [
        ('{"a": 1, "a": 2}', "key `a` given twice"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        (
            '{"a": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}",
            f"nested deeper than {MAX_DEPTH} levels",
        ),
        (
            "[" * 100_000 + "]" * 100_000,
            f"nested deeper than {MAX_DEPTH} levels",
        ),  # json's own RecursionError
        ('{"a": ["ok", {"b": "x\\ud800"}]}', "field 'a[1].b' holds a lone UTF-16 surrogate"),
        ('{"a": "\\udfff"}', "field 'a' holds a lone UTF-16 surrogate"),
    ],
)
def test_strict_json_refuses_in_one_line_naming_the_place(text, refusal):
    with pytest.raises(RowError, match="^f.jsonl:3: ") as err:
        loads(text, "f.jsonl", line=3)
    assert refusal in str(err.value)


def test_strict_json_keeps_what_is_valid_and_writes_nothing_else():
    assert loads('{"a": "\\ud83d\\ude00 \\\\ud800", "b": [1.5]}', "f.json") == {
        "a": "\U0001f600 \\ud800",
        "b": [1.5],
    }
    with pytest.raises(ValueError):
        dumps({"loss": float("nan")})
    assert json.loads(dumps(finite_or_null({"loss": [float("nan"), 1.0], "mfu": float("inf")}))) == {
        "loss": [None, 1.0],
        "mfu": None,
    }


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij", strict=True)
)


@pytest.mark.parametrize(
    "text, refusal",
    [
        (BOMB, f"m.yaml:4: aliases expand it to more than {MAX_VALUES:,} values"),
        ("x: " + "[" * 2000 + "]" * 2000, "m.yaml:1: nested deeper than 64 levels"),
        ("a: 1\nb: {c: 2, c: 3}\n", "m.yaml:2: key `c` given twice (first at line 2)"),
        ("a: &a [1, *a]\n", "m.yaml:1: an alias refers to the value that contains it"),
        ("a: [1\n", "m.yaml:2: not valid YAML"),
    ],
)
def test_bounded_yaml_refuses_quickly(text, refusal):
    started = time.monotonic()
    with pytest.raises(DataError) as err:
        load_yaml(text, "m.yaml")
    assert refusal in str(err.value) and time.monotonic() - started < 5


def test_bounded_yaml_allows_merge_overrides_and_small_aliases():
    text = "base: &b {lr: 1, r: 4}\nrun:\n  <<: *b\n  r: 8\nlist: &l [1, 2]\ncopy: *l\n"
    assert load_yaml(text, "r.yml") == {
        "base": {"lr": 1, "r": 4},
        "run": {"lr": 1, "r": 8},
        "list": [1, 2],
        "copy": [1, 2],
    }


def test_finite_numbers_on_the_command_line_and_in_a_config():
    @click.command()
    @click.option("--threshold", type=FiniteFloatRange(0, 1, min_open=True))
    def cmd(threshold):
        click.echo(threshold)

    for value in ("nan", "inf", "-inf"):
        result = CliRunner().invoke(cmd, ["--threshold", value])
        assert result.exit_code == 2 and "is not a finite number" in result.output
    assert CliRunner().invoke(cmd, ["--threshold", "0.5"]).output == "0.5\n"
    assert list(non_finite({"lr": float("nan"), "ok": 1.0, "d": [{"x": float("inf")}]})) == [
        ("lr", pytest.approx(float("nan"), nan_ok=True)),
        ("d[0].x", float("inf")),
    ]


@pytest.mark.parametrize("text", ["", "  \n\t", "\u200b", "\u200c\u200d", "\u2060 \ufeff", "\u00a0\u200b"])
def test_text_of_only_invisible_characters_is_blank(text):
    assert is_blank(text)


def test_visible_text_is_not_blank():
    assert not any(is_blank(t) for t in ("a", "\u200bx", "٣", "🙂"))


def test_a_yaml_escape_of_a_lone_surrogate_is_refused():
    with pytest.raises(DataError, match="m.yaml: `sources\\[0\\].source` holds a lone UTF-16 surrogate"):
        load_yaml('name: m\nsources: [{source: "dolly\\ud800"}]\n', "m.yaml")
    assert load_yaml('name: "\\U0001F600 \\ud83d"\n'.replace(" \\ud83d", ""), "m.yaml") == {
        "name": "\U0001f600"
    }
