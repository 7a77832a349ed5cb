"""The arithmetic of nextai-eval's Table-8-style comparison: limits, intervals, paired changes, held-out
loss."""

from __future__ import annotations

import math

import pytest

from axolotl_nextai.eval.errors import EvalInputError
from axolotl_nextai.eval.stats import heldout_change, paired_change, table_row
from axolotl_nextai.eval.tables import to_markdown
from axolotl_nextai.eval.tasks import LOCAL_PREFIX, describe_limits, parse_limits, task_limit


def test_limits_per_benchmark_and_for_all():
    limits = parse_limits(["50", "bbq=2000", "MMLU=none"])
    assert limits == {"*": 50, "BBQ": 2000, "MMLU": None}
    assert task_limit(f"{LOCAL_PREFIX}bbq", limits) == 2000 and task_limit("mmlu_philosophy", limits) is None
    assert task_limit("truthfulqa_mc1", limits) == 50 and task_limit("arc_easy", limits) == 50
    assert (
        describe_limits(limits)
        == "at most 50 items per task; BBQ: at most 2000 items per task; MMLU: every item"
    )
    for bad, message in [
        ("gsm8k=5", "unknown benchmark 'gsm8k'"),
        ("mmlu=0", "positive whole number"),
        ("many", "positive whole number"),
    ]:
        with pytest.raises(EvalInputError, match=message):
            parse_limits([bad])


def results(scores: dict[str, tuple[float, int]]) -> dict:
    return {
        "results": {name: {"acc,none": p} for name, (p, _) in scores.items()},
        "n-samples": {name: {"effective": n} for name, (_, n) in scores.items()},
    }


def test_mmlu_is_the_mean_of_its_subjects_with_the_interval_of_a_mean():
    row = table_row(
        results(
            {"mmlu_philosophy": (0.5, 100), "mmlu_moral_disputes": (0.3, 100), "truthfulqa_mc1": (0.25, 40)}
        )
    )
    assert row["scores"]["MMLU"] == pytest.approx(0.4) and row["items"]["MMLU"] == 200

    def se_ac(p: float, n: int) -> float:  # Agresti-Coull: two successes and two failures added
        q = (p * n + 2) / (n + 4)
        return math.sqrt(q * (1 - q) / (n + 4))

    se = math.sqrt(se_ac(0.5, 100) ** 2 + se_ac(0.3, 100) ** 2) / 2
    assert row["intervals"]["MMLU"] == pytest.approx([0.4 - 1.959964 * se, 0.4 + 1.959964 * se])
    se = se_ac(0.25, 40)
    assert row["intervals"]["TruthfulQA"] == pytest.approx([0.25 - 1.959964 * se, 0.25 + 1.959964 * se])
    assert row["scores"]["BBQ"] is None and row["intervals"]["BBQ"] is None
    none_right = table_row(results({"bbq": (0.0, 5)}))["intervals"]["BBQ"]
    assert none_right[0] == 0.0 and none_right[1] > 0.2  # five misses do not prove a score of zero


def test_the_change_is_paired_item_by_item():
    base = {"mmlu_philosophy": [1, 0, 0, 1], "mmlu_moral_disputes": [0, 0, 1, 1], "bbq": [1, 1, 0, 0]}
    same = paired_change(base, base)
    assert same["MMLU"] == {"change": 0.0, "interval": None, "items_changed": 0}  # zero spread bounds nothing
    # two flips to right in philosophy, none in moral_disputes: +0.25 over the two subjects; BBQ loses one of
    # four
    tuned = {"mmlu_philosophy": [1, 1, 1, 1], "mmlu_moral_disputes": [0, 0, 1, 1], "bbq": [1, 0, 0, 0]}
    change = paired_change(base, tuned)
    assert change["MMLU"]["change"] == pytest.approx(0.25) and change["BBQ"]["change"] == pytest.approx(-0.25)
    assert change["MMLU"]["items_changed"] == 2 and change["BBQ"]["items_changed"] == 1
    low, high = change["MMLU"]["interval"]
    assert low < 0.25 < high
    with pytest.raises(ValueError, match="different tasks or items"):
        paired_change(base, {**tuned, "bbq": [1, 0, 0]})


def test_heldout_change_pairs_rows():
    base = {"loss": 2.0, "per_row": [2.0, 2.2, 1.8]}
    tuned = {"loss": 1.9, "per_row": [1.9, 2.1, 1.7]}
    change = heldout_change(base, tuned)
    assert change["change"] == pytest.approx(-0.1) and change["interval"] == pytest.approx([-0.1, -0.1])


def test_the_table_has_base_tuned_change_and_items_rows():
    row = table_row(results({"mmlu_philosophy": (0.5, 4), "bbq": (0.25, 4)}))
    row["heldout"] = {"loss": 2.5, "rows": 3, "tokens": 120, "skipped_rows": 1, "cutoff": 256}
    change = {
        "columns": {
            "MMLU": {"change": 0.25, "interval": [-0.1, 0.6]},
            "BBQ": {"change": 0.0, "interval": None, "items_changed": 0},
        },
        "heldout": {"change": -0.05, "interval": [-0.08, -0.02]},
    }
    table = to_markdown([("base", row), ("tuned", row)], "a note", change)
    lines = table.splitlines()
    assert lines[0].startswith("| Model | MMLU | TruthfulQA | BBQ | CNN/DM ROUGE-2 | held-out loss |")
    assert lines[2].startswith("| base | 50.0 % [") and lines[3].startswith("| tuned |")
    assert lines[4].startswith("| change (paired) | +25.0 pts [-10.0, +60.0] | — | no answer changed |")
    assert "-0.0500 [-0.0800, -0.0200]" in lines[4]
    assert lines[5].startswith(
        "| items scored | 4 (1 subj.) | 0 | 4 | 0 | 3 rows, 120 tokens (1 with no response"
    )
    assert table.endswith("a note.\n")
