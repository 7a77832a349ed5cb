"""The YAML and JSON a user writes by hand: a mixture (`nextai-data build --mixture`), a recipe with `nextai_`
keys and the values a command-line override can give (`nextai-recipe-check`), and a run report
(`nextai-report`)."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from axolotl_launch import ROOT
from borders import run_at_border, workdir
from hypothesis import given, settings
from hypothesis import strategies as st

from axolotl_nextai.checks.recipe_check import main as recipe_check
from axolotl_nextai.run.report import main as report
from data_builders.nextai_data import main as nextai_data
from data_builders.sources import SOURCES

pytestmark = pytest.mark.fuzz  # make fuzz runs these with a larger budget

NUMBERS = (
    st.integers(-3, 200) | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, 1e-9, 1e308])
)
ODD = st.none() | st.booleans() | st.text(max_size=8) | st.lists(st.integers(0, 3), max_size=2) | st.just({})
ENTRY = st.dictionaries(
    st.sampled_from(["source", "percent", "rows", "fields", "path", "hub_id", "licence", "pecent"]),
    st.sampled_from(sorted(SOURCES)) | NUMBERS | ODD,
    max_size=4,
)
MIXTURE = st.fixed_dictionaries(
    {
        "name": st.text(max_size=6) | ODD,
        "seed": NUMBERS | ODD,
        "sources": st.lists(
            ENTRY | st.fixed_dictionaries({"source": st.sampled_from(sorted(SOURCES)), "percent": NUMBERS}),
            max_size=3,
        )
        | ODD,
    },
    optional={"threshold": NUMBERS | ODD, "decontaminate": st.just({"threshold": 0.8}) | ODD},
)
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij", strict=True)
)


def yaml_text(value, how: str, depth: int) -> str:
    """`value` as YAML, then broken one way a hand-written file is."""
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    if how == "bomb":
        return BOMB + text
    if how == "deep":
        return "x: " + "[" * depth + "]" * depth + "\n" + text
    if how == "duplicate":
        return text + text.splitlines()[0] + "\n" if text.strip() else text
    if how == "tab":
        return text.replace("  ", "\t", 1)
    if how == "alias":
        return "base: &b {source: dolly, percent: 10}\n" + text + "extra: *b\n"
    return text


HOW = st.sampled_from(["", "", "", "bomb", "deep", "duplicate", "tab", "alias"])


@given(mixture=MIXTURE, how=HOW, depth=st.integers(1, 3000))
def test_mixture_yaml(mixture, how, depth):
    with workdir() as folder:
        (folder / "m.yaml").write_text(yaml_text(mixture, how, depth), "utf-8")
        out = folder / "out"
        # a valid mixture stops at the missing tokenizer: after every check of the mixture, before the
        # embedding
        code, _ = run_at_border(
            nextai_data,
            [
                "build",
                "--mixture",
                str(folder / "m.yaml"),
                "--sample",
                "--tokenizer",
                str(folder / "no-tokenizer"),
                "--out",
                str(out / "o.jsonl"),
            ],
            folder,
            out,
        )
        assert code != 0


V5 = yaml.safe_load((ROOT / "recipes" / "llama2-70b-v5.yml").read_text())
KEYS = st.sampled_from(
    [
        "nextai_report",
        "nextai_peak_tflops",
        "nextai_time_budget_hours",
        "nextai_gpu_memory_cap_gb",
        "nextai_report_every_steps",
        "nextai_saved_matmuls",
        "nextai_reprot",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "learning_rate",
        "micro_batch_size",
        "sequence_len",
        "num_epochs",
        "warmup_steps",
        "optimizer",
        "plugins",
        "datasets",
        "resume_from_checkpoint",
    ]
)


def override_value(text: str):
    """What `axolotl.cli.train r.yml --key=text` puts in the config: fire reads literals (1e999 is inf)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if not isinstance(value, float) or not math.isnan(value) or text else text


# each example validates a whole recipe through Axolotl (~0.5 s): a tenth of the profile's budget (ci 20, fuzz
# 300)
@settings(max_examples=max(10, settings.default.max_examples // 10))
@given(
    overrides=st.dictionaries(
        KEYS,
        NUMBERS
        | ODD
        | st.sampled_from(["1e999", "-4", "nan", ".inf", "[q_proj]"]).map(
            lambda v: override_value(v) if isinstance(v, str) else v
        ),
        max_size=4,
    ),
    how=HOW,
    depth=st.integers(1, 3000),
)
def test_recipe_with_overrides(overrides, how, depth):
    with workdir() as folder:
        (folder / "r.yml").write_text(yaml_text({**V5, **overrides}, how, depth), "utf-8")
        run_at_border(recipe_check, [str(folder / "r.yml")], folder)


PRINTED = {
    "steps": 3,
    "global_step": 3,
    "max_steps": 6,
    "first_loss": 2.0,
    "final_loss": 1.2,
    "trainable_params": 10,
    "total_params": 100,
    "trainable_pct": 10.0,
    "linear_params": 90,
    "peak_memory_allocated_gib": None,
    "peak_memory_reserved_gib": None,
    "device": "cpu",
    "tokens_per_s": 5.0,
    "mfu": 0.01,
    "peak_tflops": 312.0,
    "wall_time_s": 3.0,
    "process_time_s": 9.0,
    "projected_epoch_h": 0.1,
    "stop_reason": None,
    "stop_step": None,
}


@given(
    changes=st.dictionaries(st.sampled_from(sorted(PRINTED)), NUMBERS | ODD, max_size=3),
    drop=st.sets(st.sampled_from(sorted(PRINTED)), max_size=2),
    cut=st.integers(0, 40) | st.none(),
)
def test_report_reader(changes, drop, cut):
    with workdir() as folder:
        run = folder / "run"
        run.mkdir()
        fields = {key: value for key, value in {**PRINTED, **changes}.items() if key not in drop}
        text = json.dumps(fields)
        (run / "nextai_report.json").write_text(text if cut is None else text[:cut], "utf-8")
        run_at_border(report, [str(run)], folder)
