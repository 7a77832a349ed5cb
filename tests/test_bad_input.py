"""Bad input to every command, as a new user gives it: one case per line of `CASES`, run by one test.

Each case is data: the command and its arguments, the files its folder holds, the exit code, and words its
one-line error must contain (the file:line, key or option to fix). Every case also asserts no traceback and
that no file of its folder (inputs and earlier outputs) was changed, added or removed. Click commands run
in-process through CliRunner (an exception escaping one is the traceback a user would see); the training CLI
runs as `accelerate launch -q -m axolotl.cli.train`, where the process boundary (its exit code, the traceback
printer, the launcher) is the thing tested, and its error must be the last line. Every check here happens
before a model loads.

`{tmp}` in a case is its folder, `{tiny}` the tiny model, `{port}` a port something already listens on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from axolotl_launch import OFFLINE_ENV, ROOT, tiny_cpu_config
from click.testing import CliRunner

from axolotl_nextai.checks import recipe_check
from axolotl_nextai.eval import cli as eval_cli
from axolotl_nextai.models import real_model, synth, tiny_model
from axolotl_nextai.run import report
from axolotl_nextai.serve import nextai_serve
from data_builders import nextai_data
from data_builders.sources import sample_dir

COMMANDS = {
    "nextai-data": nextai_data.main,
    "recipe_check": recipe_check.main,
    "nextai-serve": nextai_serve.main,
    "nextai-eval": eval_cli.main,
    "nextai-synth": synth.main,
    "nextai-tiny-model": tiny_model.main,
    "nextai-real-model": real_model.main,
    "report": report.main,
}
SAMPLE = sample_dir()
V5 = (ROOT / "recipes" / "llama2-70b-v5.yml").read_text()
CACHE = "cache/sentence-transformers_all-MiniLM-L6-v2"  # embed.model_folder of the default model
DOLLY = {"instruction": "Hi", "context": "", "response": "Hello", "category": "open_qa"}
ALPACA = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


@dataclass(frozen=True)
class Case:
    cli: str
    args: tuple[str, ...]
    exit_code: int
    says: str  # on exactly one line of the output
    files: dict[str, str | bytes | Path] = field(default_factory=dict)  # a Path is copied (file or folder)
    config: dict | None = None  # train: tiny-cpu.yml overrides, written to {tmp}/cfg.yml
    # folders of {tmp} it may add files to (Axolotl's cache of tokenized rows, its log)
    adds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Special:
    """A path that is no regular file: "folder" (empty), "fifo", "loop" (a symlink to itself), "device"."""

    kind: str


def make_special(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink(path.name if kind == "loop" else "/dev/zero", path)


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def mixture(**entry) -> str:
    return yaml.safe_dump({"name": "m", "seed": 1, "sources": [{"source": "dolly", **entry}]})


def npz(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def build(*extra: str, out: str = "{tmp}/out/v2.jsonl") -> tuple[str, ...]:
    return ("build", "--mixture", "v2", "--source-dir", "{tmp}/src", *extra, "--out", out)


def sample_build(*extra: str, out: str = "{tmp}/out/v5.jsonl") -> tuple[str, ...]:
    return ("build", "--mixture", "v5", "--sample", *extra, "--out", out)


def source(**files: str | bytes) -> dict:
    """The shipped sample as `{tmp}/src`, with `files` written over it (relative to `src/`)."""
    return {"src": SAMPLE, **{f"src/{name}": text for name, text in files.items()}}


def recipe(edit: tuple[str, str] | None = None, **values) -> dict:
    """`{tmp}/r.yml`: the v5 recipe, one text edit or key values applied."""
    text = V5.replace(*edit, 1) if edit else V5
    if values:
        text = yaml.safe_dump({**yaml.safe_load(text), **values}, sort_keys=False)
    return {"r.yml": text}


MIX = ("build", "--mixture", "{tmp}/m.yaml", "--sample", "--out", "{tmp}/o.jsonl")
CHECK = ("{tmp}/r.yml",)
SERVE = ("--base-model", "{tiny}")
EVAL = ("--base-model", "{tiny}", "--out", "{tmp}/eval")
ADAPTER_CONFIG = json.dumps({"peft_type": "LORA", "r": 4})

CASES = {
    # --- nextai-data build: outputs -------------------------------------------------------------------------
    "data-out-is-a-source-file": Case(
        "nextai-data",
        build(out="{tmp}/src/dolly.jsonl"),
        1,
        "--out {tmp}/src/dolly.jsonl: would overwrite {tmp}/src/dolly.jsonl, an input",
        source(),
    ),
    "data-out-companion-is-an-input": Case(
        "nextai-data",
        (
            "build",
            "--mixture",
            "v1",
            "--sample",
            "--path",
            "open_platypus={tmp}/p.dropped.jsonl",
            "--out",
            "{tmp}/p.jsonl",
        ),
        1,
        "--out {tmp}/p.jsonl: would overwrite {tmp}/p.dropped.jsonl, an input",
        {"p.dropped.jsonl": SAMPLE / "open_platypus.jsonl"},
    ),
    "data-out-is-the-mixture": Case(
        "nextai-data",
        ("build", "--mixture", "{tmp}/m.yaml", "--sample", "--out", "{tmp}/m.yaml"),
        1,
        "would overwrite {tmp}/m.yaml, an input",
        {"m.yaml": mixture(percent=100)},
    ),
    "data-out-is-a-folder": Case(
        "nextai-data",
        sample_build(out="{tmp}/here"),
        1,
        "--out {tmp}/here: {tmp}/here is a folder",
        {"here/keep.txt": "mine"},
    ),
    "data-out-under-a-file": Case(
        "nextai-data",
        sample_build(out="{tmp}/notes.txt/v5.jsonl"),
        1,
        "--out {tmp}/notes.txt/v5.jsonl: {tmp}/notes.txt is not a folder",
        {"notes.txt": "mine"},
    ),
    # --- nextai-data build: what fails before the embedding -------------------------------------------------
    "data-tokenizer-missing": Case(
        "nextai-data",
        sample_build("--tokenizer", "{tmp}/no-tokenizer"),
        1,
        "--tokenizer {tmp}/no-tokenizer: cannot load",
    ),
    "data-model-missing": Case(
        "nextai-data", sample_build("--model", "{tmp}/no-model"), 1, "--model {tmp}/no-model: cannot load"
    ),
    "data-cache-corrupt": Case(
        "nextai-data",
        sample_build("--cache-dir", "{tmp}/cache"),
        1,
        "--cache-dir: corrupt embedding cache {tmp}/" + CACHE + "/fp32.0.npz",
        {f"{CACHE}/fp32.0.npz": b"not numpy"},
    ),
    "data-cache-mismatched": Case(
        "nextai-data",
        sample_build("--cache-dir", "{tmp}/cache"),
        1,
        "(2 keys, (3, 4) vectors); delete it",
        {
            f"{CACHE}/fp32.0.npz": npz(
                keys=np.array(["a" * 40, "b" * 40], "S40"), vectors=np.zeros((3, 4), np.float32)
            )
        },
    ),
    "data-cache-other-model": Case(
        "nextai-data",
        sample_build("--cache-dir", "{tmp}/cache"),
        1,
        "holds vectors of another model named m (fingerprint 0123456789ab, this one",
        {f"{CACHE}/model.json": '{"model": "m", "fingerprint": "0123456789abcdef"}'},
    ),
    "data-encoder-unknown": Case(
        "nextai-data",
        sample_build("--encoder", "onnx"),
        2,
        "Invalid value for '--encoder': 'onnx' is not one of",
    ),
    "data-hub-offline": Case(
        "nextai-data",
        ("build", "--mixture", "v1", "--out", "{tmp}/v1.jsonl"),
        1,
        "source open_platypus: garage-bAInd/Open-Platypus@37141edbdb78: the Hub cannot be reached",
    ),
    "data-path-missing": Case(
        "nextai-data",
        sample_build("--path", "dolly={tmp}/nope.jsonl"),
        1,
        "missing source file for dolly: {tmp}/nope.jsonl",
    ),
    "data-path-not-in-mixture": Case(
        "nextai-data",
        ("build", "--mixture", "v1", "--sample", "--path", "dolly={tmp}/x.jsonl", "--out", "{tmp}/o.jsonl"),
        1,
        "--path names a source not in mixture v1: dolly",
    ),
    "data-path-without-equals": Case(
        "nextai-data", sample_build("--path", "dolly"), 2, "expected SOURCE=FILE, got 'dolly'"
    ),
    "data-sample-and-source-dir": Case(
        "nextai-data",
        sample_build("--source-dir", "{tmp}"),
        2,
        "--sample and --source-dir both name where rows come from",
    ),
    "data-source-dir-missing-file": Case(
        "nextai-data",
        build(),
        1,
        "missing source file: no faithdial",
        {**source(), "src/faithdial.jsonl": None},
    ),
    "data-decontaminate-dir-empty": Case(
        "nextai-data",
        sample_build("--decontaminate-dir", "{tmp}/bench"),
        1,
        "missing benchmark file: no mmlu_philosophy",
        {"bench/README": "empty"},
    ),
    # --- nextai-data build: the mixture ---------------------------------------------------------------------
    "mixture-unknown-name": Case(
        "nextai-data",
        ("build", "--mixture", "v9", "--sample", "--out", "{tmp}/o.jsonl"),
        1,
        "unknown mixture 'v9'",
    ),
    "mixture-file-missing": Case(
        "nextai-data",
        ("build", "--mixture", "{tmp}/none.yaml", "--sample", "--out", "{tmp}/o.jsonl"),
        1,
        "mixture file not found: {tmp}/none.yaml",
    ),
    "mixture-not-utf8": Case(
        "nextai-data",
        MIX,
        1,
        "{tmp}/m.yaml:6: not UTF-8 (byte 0xe9)",
        {"m.yaml": mixture(percent=100).encode() + b"# caf\xe9\n"},
    ),
    "mixture-not-yaml": Case(
        "nextai-data",
        MIX,
        1,
        "{tmp}/m.yaml:3: not valid YAML",
        {"m.yaml": "name: m\nseed: [1\nsources: []\n"},
    ),
    "mixture-empty": Case(
        "nextai-data", MIX, 1, "{tmp}/m.yaml: Input should be a valid dictionary", {"m.yaml": ""}
    ),
    "mixture-percent-true": Case(
        "nextai-data",
        MIX,
        1,
        "{tmp}/m.yaml: `sources.0.percent`: Input should be a valid number",
        {"m.yaml": mixture(percent=True)},
    ),
    "mixture-seed-string": Case(
        "nextai-data",
        MIX,
        1,
        "{tmp}/m.yaml: `seed`: Input should be a valid integer",
        {"m.yaml": mixture(percent=100).replace("seed: 1", "seed: '1'")},
    ),
    "mixture-key-typo": Case(
        "nextai-data",
        MIX,
        1,
        "`sources.0.pecent`: Extra inputs are not permitted",
        {"m.yaml": mixture(percent=50, pecent=10)},
    ),
    "mixture-over-100-percent": Case(
        "nextai-data",
        MIX,
        1,
        "`sources.0.percent`: Input should be less than or equal to 100",
        {"m.yaml": mixture(percent=101)},
    ),
    "mixture-unknown-source": Case(
        "nextai-data",
        MIX,
        1,
        "unknown source 'wikipedia'",
        {"m.yaml": mixture(percent=10).replace("dolly", "wikipedia")},
    ),
    "mixture-selects-no-row": Case(
        "nextai-data",
        MIX,
        1,
        "mixture m selects 0 rows: dolly 9 records, 8 after filters",
        {"m.yaml": mixture(percent=0)},
    ),
    # --- nextai-data build: source files --------------------------------------------------------------------
    "source-malformed-json": Case(
        "nextai-data",
        build(),
        1,
        "{tmp}/src/dolly.jsonl:2: malformed JSON",
        source(**{"dolly.jsonl": jsonl(DOLLY) + '{"instruction": "x",\n'}),
    ),
    "source-missing-field": Case(
        "nextai-data",
        build(),
        1,
        "dolly.jsonl:1: missing required field 'response' (row has: category, context, instruction)",
        source(**{"dolly.jsonl": jsonl({k: v for k, v in DOLLY.items() if k != "response"})}),
    ),
    "source-wrong-type": Case(
        "nextai-data",
        build(),
        1,
        "dolly.jsonl:1: field 'instruction' must be str, got list",
        source(**{"dolly.jsonl": jsonl({**DOLLY, "instruction": ["x"]})}),
    ),
    "source-empty-file": Case(
        "nextai-data", build(), 1, "{tmp}/src/dolly.jsonl: empty file", source(**{"dolly.jsonl": ""})
    ),
    "source-not-utf8": Case(
        "nextai-data",
        build(),
        1,
        "dolly.jsonl:2: not UTF-8 (byte 0xff",
        source(**{"dolly.jsonl": jsonl(DOLLY).encode() + b'{"instruction": "\xff"}\n'}),
    ),
    "source-json-array-of-numbers": Case(
        "nextai-data",
        build("--path", "dolly={tmp}/dolly.json"),
        1,
        "{tmp}/dolly.json: row 0: expected a JSON object",
        {**source(), "dolly.json": "[1, 2]"},
    ),
    "source-parquet-corrupt": Case(
        "nextai-data",
        build("--path", "dolly={tmp}/dolly.parquet"),
        1,
        "{tmp}/dolly.parquet: not a readable parquet file",
        {**source(), "dolly.parquet": b"PAR1 this is not parquet"},
    ),
    "source-csv-extra-field": Case(
        "nextai-data",
        build("--path", "dolly={tmp}/dolly.csv"),
        1,
        "{tmp}/dolly.csv:3: 5 fields, the header has 4",
        {
            **source(),
            "dolly.csv": "instruction,context,response,category\n"
            "Hi,,Hello,open_qa\nHi,,Hello,open_qa,extra\n",
        },
    ),
    "source-csv-missing-field": Case(
        "nextai-data",
        build("--path", "dolly={tmp}/dolly.csv"),
        1,
        "{tmp}/dolly.csv:2: 3 fields, the header has 4",
        {**source(), "dolly.csv": "instruction,context,response,category\nHi,,Hello\n"},
    ),
    "source-skip-leaves-nothing": Case(
        "nextai-data",
        build("--on-error", "skip"),
        1,
        "source dolly: every row is bad (2; first: {tmp}/src/dolly.jsonl:1: malformed",
        source(**{"dolly.jsonl": "{broken\n[1]\n"}),
    ),
    # --- nextai-data decontaminate / inspect ----------------------------------------------------------------
    "decontaminate-out-is-in": Case(
        "nextai-data",
        ("decontaminate", "{tmp}/t.jsonl", "--out", "{tmp}/t.jsonl"),
        1,
        "--out {tmp}/t.jsonl: would overwrite {tmp}/t.jsonl, an input",
        {"t.jsonl": jsonl(ALPACA)},
    ),
    "decontaminate-in-missing": Case(
        "nextai-data",
        ("decontaminate", "{tmp}/none.jsonl", "--out", "{tmp}/o.jsonl"),
        2,
        "'{tmp}/none.jsonl' does not exist",
    ),
    "decontaminate-bench-missing": Case(
        "nextai-data",
        ("decontaminate", "{tmp}/t.jsonl", "--benchmarks-dir", "{tmp}/bench", "--out", "{tmp}/o.jsonl"),
        1,
        "missing benchmark file: no mmlu_philosophy",
        {"t.jsonl": jsonl(ALPACA), "bench/README": "empty"},
    ),
    "inspect-missing": Case(
        "nextai-data", ("inspect", "{tmp}/none.jsonl"), 2, "'{tmp}/none.jsonl' does not exist"
    ),
    "inspect-row-without-output": Case(
        "nextai-data",
        ("inspect", "{tmp}/t.jsonl"),
        1,
        "{tmp}/t.jsonl:2: missing required field 'output'",
        {"t.jsonl": jsonl(ALPACA, {"instruction": "x", "input": ""})},
    ),
    # --- recipe_check ---------------------------------------------------------------------------------------
    "check-no-argument": Case("recipe_check", (), 2, "Missing argument 'RECIPES...'"),
    "check-file-missing": Case("recipe_check", ("{tmp}/none.yml",), 2, "'{tmp}/none.yml' does not exist"),
    "check-empty-recipe": Case(
        "recipe_check",
        CHECK,
        1,
        "FAILED  {tmp}/r.yml: {tmp}/r.yml: a recipe is a mapping of config keys; it is empty",
        {"r.yml": ""},
    ),
    "check-not-utf8": Case(
        "recipe_check",
        CHECK,
        1,
        "FAILED  {tmp}/r.yml: {tmp}/r.yml:1: not UTF-8 (byte 0xe9)",
        {"r.yml": b"# caf\xe9\n" + V5.encode()},
    ),
    "check-not-yaml": Case(
        "recipe_check",
        CHECK,
        1,
        "FAILED  {tmp}/r.yml: {tmp}/r.yml:3: not valid YAML (expected ',' or ']', but got ':'; "
        "while parsing a flow sequence at line 2)",
        {"r.yml": "lora_r: 4\nlora_target_modules: [o_proj\nlora_alpha: 16\n"},
    ),
    "check-a-list": Case(
        "recipe_check", CHECK, 1, "a recipe is a mapping of config keys; got list", {"r.yml": "- lora_r: 4\n"}
    ),
    "check-lora-r-negative": Case(
        "recipe_check", CHECK, 1, "FAILED  {tmp}/r.yml: `lora_r`: must be > 0 (got -4)", recipe(lora_r=-4)
    ),
    "check-lora-dropout-over-1": Case(
        "recipe_check", CHECK, 1, "`lora_dropout`: must be >= 0 and < 1 (got 1.5)", recipe(lora_dropout=1.5)
    ),
    "check-micro-batch-zero": Case(
        "recipe_check", CHECK, 1, "`micro_batch_size`: must be > 0 (got 0)", recipe(micro_batch_size=0)
    ),
    "check-lora-r-not-a-number": Case(
        "recipe_check", CHECK, 1, "`lora_r`: Input should be a valid integer", recipe(lora_r="four")
    ),
    "check-datasets-a-number": Case(
        "recipe_check", CHECK, 1, "`datasets`: must be a list of entries", recipe(datasets=1)
    ),  # found by the fuzzer: a TypeError in the typo check
    "check-datasets-a-string": Case(
        "recipe_check", CHECK, 1, "`datasets`: must be a list of entries", recipe(datasets="data/v5.jsonl")
    ),
    "check-key-typo": Case(
        "recipe_check",
        CHECK,
        1,
        "unknown key `lora_alpah` (did you mean `lora_alpha`?)",
        recipe(("lora_alpha:", "lora_alpah:")),
    ),
    "check-optimizer-a-list": Case(
        "recipe_check", CHECK, 1, "`optimizer.str`: Input should be a valid string", recipe(optimizer=[])
    ),  # found by the fuzzer: unhashable in the name check
    "check-optimizer-typo": Case(
        "recipe_check",
        CHECK,
        1,
        "unknown optimizer `paged_adamw_8bitt`",
        recipe(optimizer="paged_adamw_8bitt"),
    ),
    "check-plugin-key-typo": Case(
        "recipe_check", CHECK, 1, "unknown config key `nextai_reprot`", recipe(nextai_reprot=True)
    ),
    "check-plugin-key-type": Case(
        "recipe_check",
        CHECK,
        1,
        "`nextai_report`: Input should be a valid boolean",
        recipe(nextai_report="often"),
    ),
    # --- the training CLI -----------------------------------------------------------------------------------
    "train-lora-r-negative": Case(
        "train",
        (),
        1,
        "config error: {tmp}/cfg.yml: `lora_r`: must be > 0 (got -4)",
        {"data.jsonl": jsonl(ALPACA)},
        {"lora_r": -4},
    ),
    "train-resume-missing": Case(
        "train",
        (),
        1,
        "`resume_from_checkpoint`: `{tmp}/out/checkpoint-5` does not exist",
        {"data.jsonl": jsonl(ALPACA)},
        {"resume_from_checkpoint": "{tmp}/out/checkpoint-5"},
    ),
    "train-row-without-output": Case(
        "train",
        (),
        1,
        "datasets[0]: {tmp}/data.jsonl:2: missing required field 'output'",
        {"data.jsonl": jsonl(ALPACA, {"instruction": "Name a fruit.", "input": ""})},
        {},
    ),
    "train-base-model-missing": Case(
        "train",
        (),
        1,
        "`base_model`: `{tmp}/no-model` does not exist",
        {"data.jsonl": jsonl(ALPACA)},
        {"base_model": "{tmp}/no-model"},
    ),
    "train-axolotl-type-error": Case(
        "train",
        (),
        1,
        "config error: `lora_r`: Input should be a valid integer",
        {"data.jsonl": jsonl(ALPACA)},
        {"lora_r": "four"},
    ),
    # --- nextai-serve ---------------------------------------------------------------------------------------
    "serve-base-model-missing": Case(
        "nextai-serve", ("--base-model", "{tmp}/none"), 1, "--base-model {tmp}/none: no such folder"
    ),
    "serve-base-model-not-a-model": Case(
        "nextai-serve",
        ("--base-model", "{tmp}/m"),
        1,
        "--base-model {tmp}/m: no config.json in it",
        {"m/notes.txt": "x"},
    ),
    "serve-base-model-offline-hub": Case(
        "nextai-serve",
        ("--base-model", "nobody/nothing", "--port", "{free}"),
        1,
        "--base-model nobody/nothing: cannot load",
    ),
    "serve-adapter-missing": Case(
        "nextai-serve", (*SERVE, "--adapter", "{tmp}/out"), 1, "--adapter {tmp}/out: no such folder"
    ),
    "serve-adapter-empty-folder": Case(
        "nextai-serve",
        (*SERVE, "--adapter", "{tmp}/out"),
        1,
        "--adapter {tmp}/out: no adapter_config.json in it",
        {"out/README.md": "x"},
    ),
    "serve-adapter-without-weights": Case(
        "nextai-serve",
        (*SERVE, "--adapter", "{tmp}/out"),
        1,
        "--adapter {tmp}/out: adapter_config.json but no adapter_model.safetensors",
        {"out/adapter_config.json": ADAPTER_CONFIG},
    ),
    "serve-port-taken": Case("nextai-serve", (*SERVE, "--port", "{port}"), 1, "--port {port}: cannot listen"),
    "serve-port-out-of-range": Case(
        "nextai-serve", (*SERVE, "--port", "70000"), 2, "70000 is not in the range"
    ),
    # --- nextai-eval ----------------------------------------------------------------------------------------
    "eval-base-model-missing": Case(
        "nextai-eval", ("--base-model", "{tmp}/none"), 1, "--base-model {tmp}/none: no such folder"
    ),
    "eval-adapter-without-weights": Case(
        "nextai-eval",
        (*EVAL, "--adapter", "{tmp}/out"),
        1,
        "adapter_config.json but no adapter_model.safetensors",
        {"out/adapter_config.json": ADAPTER_CONFIG},
    ),
    "eval-data-dir-missing": Case(
        "nextai-eval", (*EVAL, "--data-dir", "{tmp}/none"), 2, "'{tmp}/none' does not exist"
    ),
    "eval-data-dir-without-tasks": Case(
        "nextai-eval",
        (*EVAL, "--data-dir", "{tmp}/d"),
        2,
        "--data-dir {tmp}/d: no paper task file in it",
        {"d/notes.txt": "x"},
    ),
    "eval-limit-zero": Case(
        "nextai-eval",
        (*EVAL, "--limit", "0"),
        2,
        "--limit 0: expected a positive whole number of items or none",
    ),
    "eval-out-is-a-file": Case(
        "nextai-eval",
        ("--base-model", "{tiny}", "--out", "{tmp}/results.md"),
        2,
        "--out: {tmp}/results.md: not a folder",
        {"results.md": "earlier"},
    ),
    "eval-fewshot-without-dev": Case(
        "nextai-eval",
        (*EVAL, "--data-dir", "{tmp}/d", "--num-fewshot", "5"),
        2,
        "--num-fewshot 5 needs a <task>.dev.jsonl",
        {"d/mmlu_philosophy.jsonl": jsonl({"question": "2+2?", "choices": ["3", "4"], "answer": 1})},
    ),
    "eval-unknown-task": Case(
        "nextai-eval",
        (*EVAL, "--tasks", "mmlu_philosophyy"),
        2,
        "--tasks: unknown lm-eval task mmlu_philosophyy (did you mean `mmlu_philosophy`?)",
    ),
    # --- nextai-synth and nextai-tiny-model -----------------------------------------------------------------
    "synth-out-not-empty": Case(
        "nextai-synth",
        ("--preset", "tiny", "--out", "{tmp}/m"),
        2,
        "{tmp}/m: is not empty (pass --overwrite to replace it)",
        {"m/weights.bin": b"mine"},
    ),
    "synth-out-is-a-file": Case(
        "nextai-synth",
        ("--preset", "tiny", "--out", "{tmp}/m", "--overwrite"),
        2,
        "{tmp}/m: is a file",
        {"m": b"mine"},
    ),
    "synth-config-not-json": Case(
        "nextai-synth",
        ("--config", "{tmp}/c.json", "--out", "{tmp}/m"),
        2,
        "{tmp}/c.json:2: malformed JSON",
        {"c.json": '{"hidden_size": 128,\n  oops}'},
    ),
    "synth-config-missing-keys": Case(
        "nextai-synth",
        ("--config", "{tmp}/c.json", "--out", "{tmp}/m"),
        2,
        "{tmp}/c.json: missing intermediate_size",
        {"c.json": '{"hidden_size": 128}'},
    ),
    "synth-config-bad-value": Case(
        "nextai-synth",
        ("--config", "{tmp}/c.json", "--out", "{tmp}/m"),
        2,
        "hidden_size must be a positive integer (got '128')",
        {
            "c.json": json.dumps(
                {
                    "hidden_size": "128",
                    "intermediate_size": 256,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                    "num_key_value_heads": 1,
                    "vocab_size": 300,
                    "max_position_embeddings": 64,
                }
            )
        },
    ),
    "synth-preset-and-config": Case(
        "nextai-synth",
        ("--preset", "tiny", "--config", "{tmp}/c.json", "--out", "{tmp}/m"),
        2,
        "give exactly one of --preset or --config",
        {"c.json": "{}"},
    ),
    "synth-no-cuda": Case(
        "nextai-synth",
        ("--preset", "tiny", "--out", "{tmp}/m", "--device", "cuda"),
        2,
        "cuda: no CUDA device here",
    ),
    "tiny-out-is-a-file": Case(
        "nextai-tiny-model", ("--out", "{tmp}/m"), 2, "{tmp}/m: is a file", {"m": b"mine"}
    ),
    "tiny-out-holds-something-else": Case(
        "nextai-tiny-model",
        ("--out", "{tmp}/m"),
        2,
        "{tmp}/m holds something else; choose another --out or pass --overwrite",
        {"m/weights.bin": b"mine"},
    ),
}

# Issue 23's examples, each as the probe found it (what the fix says is the line checked).
SURROGATE_ROW = '{"instruction": "Hi \\ud800", "context": "", "response": "Hello", "category": "open_qa"}\n'
ALPACA_SURROGATE = '{"instruction": "Name a colour.", "input": "", "output": "Blue \\udfff."}\n'
# 10 levels of 10 aliases: 494 bytes that expand to 10^10 values (5 levels: 43 s and 3.3 GB before its error)
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij", strict=True)
)
DEEP_YAML = "x: " + "[" * 2000 + "]" * 2000 + "\n"
DEEP_JSON = '{"instruction": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
REPORT = {"steps": 3, "global_step": 3, "max_steps": 6, "first_loss": 2.0, "final_loss": 1.2}
MMLU_ROW = {"question": "2+2?", "subject": "philosophy", "choices": ["3", "4", "5", "6"], "answer": 1}
CASES.update(
    {
        # 1. one error boundary per entry point: the report reader
        "report-no-argument": Case("report", (), 2, "Missing argument 'OUTPUT_DIR'"),
        "report-folder-missing": Case(
            "report", ("{tmp}/run",), 1, "{tmp}/run: does not exist (give a run's output_dir)"
        ),
        "report-folder-empty": Case(
            "report", ("{tmp}/run",), 1, "{tmp}/run: no nextai_report.json in it", {"run": Special("folder")}
        ),
        "report-partial-folder": Case(
            "report",
            ("{tmp}/run",),
            1,
            "{tmp}/run: no nextai_report.json in it",
            {"run/checkpoint-2/adapter_config.json": "{}"},
        ),
        "report-empty-file": Case(
            "report", ("{tmp}/run",), 1, "{tmp}/run/nextai_report.json: empty", {"run/nextai_report.json": ""}
        ),
        "report-corrupt": Case(
            "report",
            ("{tmp}/run",),
            1,
            "{tmp}/run/nextai_report.json:1: malformed JSON",
            {"run/nextai_report.json": '{"steps": 3, "glo'},
        ),
        "report-partial-report": Case(
            "report",
            ("{tmp}/run",),
            1,
            "{tmp}/run/nextai_report.json: not a complete run report: `trainable_params`: Field required",
            {"run/nextai_report.json": json.dumps(REPORT)},
        ),
        # 2. text is Unicode we can encode (training reads rows through the same reader:
        #    train-row-without-output);
        # zero-width instructions: tests/data_builders/filters/test_filters.py
        "source-lone-surrogate": Case(
            "nextai-data",
            build(),
            1,
            "dolly.jsonl:1: field 'instruction' holds a lone UTF-16 surrogate",
            source(**{"dolly.jsonl": SURROGATE_ROW}),
        ),
        "decontaminate-lone-surrogate": Case(
            "nextai-data",
            ("decontaminate", "{tmp}/t.jsonl", "--out", "{tmp}/o.jsonl"),
            1,
            "{tmp}/t.jsonl:1: field 'output' holds a lone UTF-16 surrogate",
            {"t.jsonl": ALPACA_SURROGATE},
        ),
        "eval-heldout-lone-surrogate": Case(
            "nextai-eval",
            (*EVAL, "--heldout", "{tmp}/h.jsonl"),
            2,
            "{tmp}/h.jsonl:1: field 'output' holds a lone UTF-16 surrogate",
            {"h.jsonl": ALPACA_SURROGATE},
        ),
        # 3. bounded parsing
        "mixture-alias-bomb": Case(
            "nextai-data",
            MIX,
            1,
            "{tmp}/m.yaml:4: aliases expand it to more than 100,000 values",
            {"m.yaml": BOMB + mixture(percent=100)},
        ),
        "check-alias-bomb": Case(
            "recipe_check",
            CHECK,
            1,
            "{tmp}/r.yml:4: aliases expand it to more than 100,000 values",
            {"r.yml": BOMB + V5},
        ),
        "mixture-deep-nesting": Case(
            "nextai-data", MIX, 1, "{tmp}/m.yaml:1: nested deeper than 64 levels", {"m.yaml": DEEP_YAML}
        ),
        "check-deep-nesting": Case(
            "recipe_check", CHECK, 1, "{tmp}/r.yml:1: nested deeper than 64 levels", {"r.yml": DEEP_YAML}
        ),
        "source-deep-json": Case(
            "nextai-data",
            build(),
            1,
            "dolly.jsonl:1: nested deeper than 64 levels",
            source(**{"dolly.jsonl": DEEP_JSON}),
        ),
        "synth-config-deep-json": Case(
            "nextai-synth",
            ("--config", "{tmp}/c.json", "--out", "{tmp}/m"),
            2,
            "{tmp}/c.json: nested deeper than 64 levels",
            {"c.json": DEEP_JSON},
        ),
        "mixture-duplicate-key": Case(
            "nextai-data",
            MIX,
            1,
            "{tmp}/m.yaml:3: key `seed` given twice (first at line 1)",
            {"m.yaml": "seed: 1\n" + mixture(percent=100)},
        ),
        "check-duplicate-key": Case(
            "recipe_check", CHECK, 1, "key `lora_r` given twice", {"r.yml": "lora_r: 64\n" + V5}
        ),
        "source-duplicate-json-key": Case(
            "nextai-data",
            build(),
            1,
            "dolly.jsonl:1: not strict JSON (key `instruction` given twice)",
            source(**{"dolly.jsonl": '{"instruction": "a", ' + jsonl(DOLLY)[1:]}),
        ),
        "source-fifo": Case(
            "nextai-data",
            build("--path", "dolly={tmp}/d.jsonl"),
            1,
            "source file for dolly: {tmp}/d.jsonl is a FIFO (named pipe)",
            {**source(), "d.jsonl": Special("fifo")},
        ),
        "source-dir-fifo": Case(
            "nextai-data",
            build(),
            1,
            "source file {tmp}/src/dolly.jsonl: is a FIFO (named pipe)",
            {**source(), "src/dolly.jsonl": Special("fifo")},
        ),
        "source-symlink-loop": Case(
            "nextai-data",
            build("--path", "dolly={tmp}/d.jsonl"),
            1,
            "source file for dolly: {tmp}/d.jsonl is a symlink loop",
            {**source(), "d.jsonl": Special("loop")},
        ),
        "source-device": Case(
            "nextai-data",
            build("--path", "dolly={tmp}/d.jsonl"),
            1,
            "source file for dolly: {tmp}/d.jsonl is a character device",
            {**source(), "d.jsonl": Special("device")},
        ),
        "mixture-fifo": Case(
            "nextai-data", MIX, 1, "mixture {tmp}/m.yaml: is a FIFO (named pipe)", {"m.yaml": Special("fifo")}
        ),
        "check-fifo": Case(
            "recipe_check", CHECK, 2, "'{tmp}/r.yml' is a FIFO (named pipe)", {"r.yml": Special("fifo")}
        ),
        # 4. numbers are finite and in range
        "decontaminate-threshold-nan": Case(
            "nextai-data",
            ("decontaminate", "{tmp}/t.jsonl", "--threshold", "nan", "--out", "{tmp}/o.jsonl"),
            2,
            "'nan' is not a finite number",
            {"t.jsonl": jsonl(ALPACA)},
        ),
        "decontaminate-threshold-empties": Case(
            "nextai-data",
            (
                "decontaminate",
                "{tmp}/t.jsonl",
                "--benchmarks-dir",
                "{tmp}/b",
                "--benchmark",
                "mmlu_philosophy",
                "--threshold",
                "1e-9",
                "--out",
                "{tmp}/o.jsonl",
            ),
            1,
            "would remove every one of its 1 rows",
            {"t.jsonl": jsonl(ALPACA), "b/mmlu_philosophy.jsonl": jsonl(MMLU_ROW)},
        ),
        "mixture-percent-nan": Case(
            "nextai-data",
            MIX,
            1,
            "`sources.0.percent`: Input should be a finite number",
            {"m.yaml": mixture(percent=float("nan"))},
        ),
        "check-learning-rate-nan": Case(
            "recipe_check",
            CHECK,
            1,
            "`learning_rate`: must be a finite number (got nan)",
            recipe(learning_rate=float("nan")),
        ),
        "check-peak-tflops-inf": Case(
            "recipe_check",
            CHECK,
            1,
            "`nextai_peak_tflops`: must be a finite number (got inf)",
            recipe(nextai_peak_tflops=float("inf")),
        ),
        "check-learning-rate-string-nan": Case(
            "recipe_check",
            CHECK,
            1,
            "`learning_rate`: must be a finite number (got nan)",
            # the spelling: a string to YAML
            recipe(learning_rate="nan"),
        ),
        "train-learning-rate-nan": Case(
            "train",
            (),
            1,
            "`learning_rate`: must be a finite number (got nan)",
            {"data.jsonl": jsonl(ALPACA)},
            {"learning_rate": "nan"},
            adds=("out",),
        ),
        # 5. files: nothing destroyed (what is left behind, symlinked --out, all or nothing:
        #    tests/data_builders/test_atomic.py)
        "real-model-out-is-a-file": Case(
            "nextai-real-model", ("--out", "{tmp}/m"), 2, "Directory '{tmp}/m' is a file", {"m": "mine"}
        ),
        "real-model-out-not-empty": Case(
            "nextai-real-model",
            ("--out", "{tmp}/m"),
            1,
            "--out {tmp}/m: is not empty (pass --overwrite to replace it)",
            {"m/notes.txt": "mine"},
        ),
        # 6. training does what it says, or refuses
        "data-path-twice": Case(
            "nextai-data",
            sample_build("--path", "dolly={tmp}/a.jsonl", "--path", "dolly={tmp}/b.jsonl"),
            2,
            "dolly given twice ({tmp}/a.jsonl and {tmp}/b.jsonl)",
        ),
        "check-plugin-not-importable": Case(
            "recipe_check",
            CHECK,
            1,
            "plugins[1] `nextai_missing.Plugin`: cannot load",
            recipe(plugins=["axolotl_nextai.NextAIPlugin", "nextai_missing.Plugin"]),
        ),
        # training refuses it through the same check as train-resume-missing
        "check-resume-without-optimizer": Case(
            "recipe_check",
            CHECK,
            0,
            "has no trainer_state.json or scheduler.pt or optimizer.pt",
            {**recipe(resume_from_checkpoint="ckpt"), "ckpt/adapter_config.json": "{}"},
        ),
        "train-plugin-not-importable": Case(
            "train",
            (),
            1,
            "plugins[1] `nextai_missing.Plugin`: did not import",
            {"data.jsonl": jsonl(ALPACA)},
            {"plugins": ["axolotl_nextai.NextAIPlugin", "nextai_missing.Plugin"]},
        ),
        "train-sequence-len-8": Case(
            "train",
            (),
            1,
            "no training row has a token to learn within sequence_len 8",
            {"data.jsonl": jsonl(ALPACA)},
            {"sequence_len": 8},
            adds=("prepared", "out"),
        ),
        # 8. eval validates before loading
        "eval-task-file-invalid": Case(
            "nextai-eval",
            (*EVAL, "--data-dir", "{tmp}/d"),
            2,
            "--data-dir: {tmp}/d/mmlu_philosophy.jsonl:1: missing required field 'choices'",
            {"d/mmlu_philosophy.jsonl": jsonl({"question": "2+2?", "answer": 1})},
        ),
        "eval-task-file-fifo": Case(
            "nextai-eval",
            (*EVAL, "--data-dir", "{tmp}/d"),
            2,
            "--data-dir: {tmp}/d/mmlu_philosophy.jsonl: is a FIFO (named pipe)",
            {"d/mmlu_philosophy.jsonl": Special("fifo")},
        ),
        "eval-heldout-cutoff-no-response": Case(
            "nextai-eval",
            (*EVAL, "--heldout", "{tmp}/h.jsonl", "--heldout-cutoff", "4"),
            2,
            "--heldout-cutoff 4: no held-out row keeps a response token",
            {"h.jsonl": jsonl(ALPACA)},
        ),
    }
)


def snapshot(*folders: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mode of every file under `folders`."""
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def place(files: dict, folder: Path) -> None:
    for name, content in files.items():
        path = folder / name
        if isinstance(content, Special):
            path.parent.mkdir(parents=True, exist_ok=True)
            make_special(path, content.kind)
        elif content is None:
            path.unlink()
        elif isinstance(content, Path):
            (shutil.copytree if content.is_dir() else shutil.copyfile)(content, path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)


@pytest.fixture(scope="module")
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_config(case: Case, tiny: Path, folder: Path, fill) -> dict:
    """tiny-cpu.yml on `folder/data.jsonl` with the case's overrides, as `cfg.yml` holds it."""
    overrides = {key: fill(value) if isinstance(value, str) else value for key, value in case.config.items()}
    data = [{"path": str(folder / "data.jsonl"), "type": "axolotl_nextai.alpaca"}]
    return {
        "cfg.yml": yaml.safe_dump(tiny_cpu_config(tiny, folder, datasets=data, **overrides), sort_keys=False)
    }


def train(folder: Path) -> tuple[int, str]:
    """`accelerate launch -q -m axolotl.cli.train cfg.yml` from `folder`: the launch the README gives for a
    failure to end on our line (without -q, accelerate adds its CalledProcessError traceback)."""
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(ROOT)}
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "-q",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    done = subprocess.run(
        [*launch, "-m", "axolotl.cli.train", str(folder / "cfg.yml")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if CASES[n].cli == "train" else n for n in CASES]
)
def test_bad_input_fails_in_one_line_and_changes_nothing(name, tmp_path, tiny_model, busy_port, monkeypatch):
    case = CASES[name]
    folder = tmp_path / "case"
    folder.mkdir()

    def fill(text: str) -> str:
        return text.format(tmp=folder, tiny=tiny_model, port=busy_port, free=free_port())

    place(case.files, folder)
    if case.cli == "train":
        place(train_config(case, tiny_model, folder, fill), folder)
    before = snapshot(folder, tiny_model)
    if case.cli == "train":
        exit_code, output = train(folder)
    else:
        monkeypatch.chdir(folder)
        result = CliRunner().invoke(COMMANDS[case.cli], [fill(a) for a in case.args])
        exit_code, output = result.exit_code, result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            pytest.fail(
                f"{name}: {type(result.exception).__name__} escaped: a traceback for the user\n{output}"
            )
    says = fill(case.says)
    assert "Traceback" not in output, output[-3000:]
    assert exit_code == case.exit_code, output[-3000:]
    assert len([line for line in output.splitlines() if says in line]) == 1, (
        f"{says!r} not on one line:\n{output[-3000:]}"
    )
    if case.cli == "train":  # the error is the last thing the user sees
        assert says in output.strip().splitlines()[-1], output[-3000:]
    after = {
        path: digest
        for path, digest in snapshot(folder, tiny_model).items()
        if path in before or not any(path.startswith(f"{folder}/{added}/") for added in case.adds)
    }
    assert after == before, "a file was changed, added or removed"


def test_the_suite_covers_every_command():
    by_cli = {cli: sum(case.cli == cli for case in CASES.values()) for cli in (*COMMANDS, "train")}
    assert len(CASES) >= 60 and min(by_cli.values()) >= 2, by_cli
