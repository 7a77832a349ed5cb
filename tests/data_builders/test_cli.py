"""`nextai-data` end to end through click's runner: the sample v5 build, its guarantees, what it drops or
skips (said and counted), and a quiet run as a user starts it. Bad input that stops a build:
tests/test_bad_input.py."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from axolotl_launch import read_jsonl
from click.testing import CliRunner

from data_builders.dedup.embed import DEFAULT_MODEL, resolve_model
from data_builders.filters.platypus_subsets import KEEP
from data_builders.mixing import load_mixture, selected_count
from data_builders.nextai_data import main
from data_builders.sources import sample_dir

ROOT = Path(__file__).resolve().parents[2]
FILES = ("demo.jsonl", "demo.manifest.json", "demo.near_dups.jsonl", "demo.dropped.jsonl")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "demo.jsonl"
    result = run("build", "--mixture", "v5", "--sample", "--out", out)
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    manifest = json.loads(out.with_name("demo.manifest.json").read_text())
    return out, rows, manifest


def test_same_inputs_and_seed_give_byte_identical_files(sample_build, tmp_path):
    first, _, _ = sample_build
    again = tmp_path / "demo.jsonl"
    assert run("build", "--mixture", "v5", "--sample", "--out", again).exit_code == 0
    for name in FILES:
        # its stages' wall-clock seconds are the one thing that may differ
        if name.endswith(".manifest.json"):
            assert without_seconds(json.loads((tmp_path / name).read_text())) == without_seconds(
                json.loads((first.parent / name).read_text())
            ), name
        else:
            assert (tmp_path / name).read_bytes() == (first.parent / name).read_bytes(), name


def without_seconds(value):
    """The manifest with every `*seconds` key taken out, at any depth."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def test_each_percentage_is_exact_to_one_row(sample_build):
    _, _, manifest = sample_build
    for entry in load_mixture("v5").sources:
        stats = manifest["sources"][entry.source]
        assert stats["selected"] == selected_count(entry.percent, stats["available"])
        assert abs(stats["selected"] - entry.percent * stats["available"] / 100) <= 0.5


def test_platypus_rows_come_only_from_the_seven_subsets(sample_build):
    _, rows, manifest = sample_build
    subsets = {r["sub_source"] for r in rows if r["source"] == "open_platypus"}
    assert subsets and subsets <= KEEP
    assert manifest["sources"]["open_platypus"]["dropped"] == {
        "exact_duplicate": 1,
        "llm_generated": 2,
        "paper_choice": 1,
    }


def test_no_output_pair_above_threshold_rechecked_with_minilm(sample_build):
    from sentence_transformers import SentenceTransformer, util

    out, rows, manifest = sample_build
    texts = [f"{r['instruction']}\n{r['input']}" if r["input"] else r["instruction"] for r in rows]
    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    sims = util.cos_sim(model.encode(texts), model.encode(texts)).numpy()
    np.fill_diagonal(sims, 0)
    assert sims.max() <= 0.9
    pairs = read_jsonl(out.with_name("demo.near_dups.jsonl"))
    assert len(pairs) == manifest["stages"]["near_dedup"]["removed"] >= 1
    assert all(p["score"] > 0.9 for p in pairs)


def test_manifest_counts_add_up_and_name_the_output(sample_build):
    out, rows, manifest = sample_build
    assert manifest["output"] == {
        "file": "demo.jsonl",
        "rows": len(rows),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    stages = manifest["stages"]
    assert stages["filter"]["out"] == stages["load"]["records"] - sum(stages["filter"]["dropped"].values())
    assert (
        stages["near_dedup"]["out"] == stages["select"]["out"] - stages["near_dedup"]["removed"] == len(rows)
    )
    assert stages["near_dedup"]["encoder"] == (
        "openvino" if stages["near_dedup"]["device"] == "cpu" else "torch"
    )
    assert manifest["sources"]["dolly"]["origin"]["file"] == "dolly.jsonl"
    assert len(manifest["sources"]["dolly"]["origin"]["sha256"]) == 64
    assert [e["source"] for e in manifest["mixture"]["sources"]] == [
        "dolly",
        "open_platypus",
        "codegen",
        "faithdial",
        "multi_news",
        "lima",
    ]


def test_list_and_inspect(sample_build):
    out, rows, _ = sample_build
    listed = run("list")
    assert listed.exit_code == 0 and "v5: dolly 100%, open_platypus 100%, codegen 10%" in listed.output
    assert (
        "v7: dolly 100%, open_platypus 100%, codegen 10%, lima 100%, flan_v2_cot 2,000 rows" in listed.output
    )
    assert "dolly: databricks/databricks-dolly-15k@b122d1b59226" in listed.output
    shown = run("inspect", out)
    assert shown.exit_code == 0 and f"{len(rows)} rows" in shown.output
    platypus = sum(1 for r in rows if r["source"] == "open_platypus")
    assert f"open_platypus: {platypus}\n" in shown.output


@pytest.mark.parametrize("flag", ["--licence", "--license"])  # the US spelling stays accepted
def test_licence_commercial_drops_noncommercial_and_unknown(tmp_path, flag):
    out = tmp_path / "c.jsonl"
    assert run("build", "--mixture", "v5", "--sample", flag, "commercial", "--out", out).exit_code == 0
    manifest = json.loads(out.with_name("c.manifest.json").read_text())
    assert manifest["options"]["licence"] == "commercial"
    assert {"licence_noncommercial", "licence_unknown"} <= manifest["stages"]["filter"]["dropped"].keys()
    assert all(key.endswith("(commercial)") for key in manifest["licences"])


def test_tokenizer_stats_and_the_demo_rows_fit_the_tiny_recipe(tmp_path, tiny_model):
    out = tmp_path / "t.jsonl"
    assert run("build", "--mixture", "v5", "--sample", "--tokenizer", tiny_model, "--out", out).exit_code == 0
    tokens = json.loads(out.with_name("t.manifest.json").read_text())["tokens"]
    assert tokens["max"] >= tokens["median"] > 0
    assert tokens["max"] <= yaml.safe_load((ROOT / "recipes" / "tiny-cpu.yml").read_text())["sequence_len"]


def test_user_defined_source_from_yaml(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text(
        json.dumps({"q": "What is 2+2?", "a": "4"})
        + "\n"
        + json.dumps({"q": "Capital of Peru?", "a": "Lima"})
    )
    mix = tmp_path / "mine.yaml"
    mix.write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "seed": 3,
                "sources": [
                    {
                        "source": "my_qa",
                        "percent": 100,
                        "path": str(data),
                        "fields": {"instruction": "q", "output": "a"},
                        "licence": "CC-BY-4.0",
                        "llm_generated": False,
                    }
                ],
            }
        )
    )
    out = tmp_path / "mine.jsonl"
    result = run("build", "--mixture", mix, "--out", out)
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(out)] == ["my_qa:0", "my_qa:1"]


# --- what a build drops or skips is said and counted (bad input that stops a build: tests/test_bad_input.py)
# ---


@pytest.fixture
def source_dir(tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(sample_dir(), folder)
    return folder


def corrupt(folder, name, data: bytes):
    (folder / f"{name}.jsonl").write_bytes(data)


DOLLY_OK = json.dumps(
    {"instruction": "Hi", "context": "", "response": "Hello", "category": "open_qa"}
).encode()


def test_on_error_skip_counts_bad_rows_in_the_manifest(source_dir, tmp_path):
    corrupt(
        source_dir, "dolly", DOLLY_OK + b"\n{broken\n" + DOLLY_OK.replace(b"Hi", b"Hey there") + b"\n\xff\n"
    )
    out = tmp_path / "s.jsonl"
    result = run("build", "--mixture", "v2", "--source-dir", source_dir, "--on-error", "skip", "--out", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads(out.with_name("s.manifest.json").read_text())
    dolly = manifest["sources"]["dolly"]
    assert (dolly["rows_in"], dolly["bad_rows"], dolly["records"]) == (4, 2, 2)
    assert dolly["bad_row_examples"][0].endswith(
        "dolly.jsonl:2: malformed JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    said = (
        "source dolly: skipped 2 bad rows of 4 (--on-error skip; first: "
        f"{source_dir}/dolly.jsonl:2: malformed JSON"
    )
    assert f"warning: {said}" in result.output and manifest["warnings"][0].startswith(said)


def test_blank_instructions_are_dropped_with_their_reason(source_dir, tmp_path):
    rows = [
        json.loads(DOLLY_OK),
        {**json.loads(DOLLY_OK), "instruction": ""},
        {**json.loads(DOLLY_OK), "instruction": " \n\t", "response": "Other"},
    ]
    corrupt(source_dir, "dolly", "".join(json.dumps(r) + "\n" for r in rows).encode())
    out = tmp_path / "b.jsonl"
    result = run("build", "--mixture", "v2", "--source-dir", source_dir, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads(out.with_name("b.manifest.json").read_text())
    assert manifest["sources"]["dolly"]["dropped"] == {"empty_instruction": 2}
    assert "empty_instruction 2" in result.output  # "dropped by filters: ..."
    assert all(r["instruction"].strip() for r in read_jsonl(out))
    assert [
        r["filter_reason"] for r in read_jsonl(out.with_name("b.dropped.jsonl")) if r["source"] == "dolly"
    ] == ["empty_instruction", "empty_instruction"]


def test_a_source_that_contributes_no_row_is_a_warning(tmp_path):
    mix = tmp_path / "m.yaml"
    mix.write_text(
        yaml.safe_dump(
            {
                "name": "m",
                "seed": 1,
                "sources": [{"source": "dolly", "percent": 100}, {"source": "lima", "percent": 0}],
            }
        )
    )
    out = tmp_path / "m.jsonl"
    result = run("build", "--mixture", mix, "--sample", "--out", out)
    assert result.exit_code == 0, result.output
    said = "source lima: contributes 0 rows ("
    assert f"warning: {said}" in result.output
    assert json.loads(out.with_name("m.manifest.json").read_text())["warnings"][0].startswith(said)


def test_a_rebuild_replaces_the_whole_set(tmp_path):
    """The files of one build are one set: a companion an earlier build wrote and this one does not is
    removed."""
    out = tmp_path / "v5.jsonl"
    stale = out.with_name("v5.contamination.jsonl")
    stale.write_text('{"from": "an earlier build with decontamination"}\n')
    result = run("build", "--mixture", "v5", "--sample", "--out", out)
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"v5.{kind}" for kind in ("jsonl", "manifest.json", "near_dups.jsonl", "dropped.jsonl")
    )


def test_path_overrides_one_source(tmp_path):
    rows = tmp_path / "platypus_copy.jsonl"
    rows.write_text(
        json.dumps({"instruction": "2+2?", "input": "", "output": "4", "data_source": "ARB"}) + "\n"
    )
    out = tmp_path / "v1.jsonl"
    result = run("build", "--mixture", "v1", "--sample", "--path", f"open_platypus={rows}", "--out", out)
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(out)] == ["open_platypus:0"]
    manifest = json.loads(out.with_name("v1.manifest.json").read_text())
    assert manifest["sources"]["open_platypus"]["origin"]["file"] == "platypus_copy.jsonl"


def test_a_successful_build_is_quiet_and_its_files_follow_the_umask(tmp_path):
    """The console script as a user runs it: no "Failed to load" or deprecation lines from torchao,
    bitsandbytes or torch on a build that worked, and files made with the user's umask, not mkstemp's 0600."""
    out = tmp_path / "v5.jsonl"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("nextai-data")),
            "build",
            "--mixture",
            "v5",
            "--sample",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    noise = [line for line in done.stderr.splitlines() if re.search(r"(?i)warn|deprecat|fail|error", line)]
    assert not noise, noise
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {oct(0o640)}
