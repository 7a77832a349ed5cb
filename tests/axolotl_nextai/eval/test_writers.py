"""nextai-eval's output set from in-memory rows: results.md, results.json, task YAMLs and comparison.png
together; a rerun without a base removes the stale plot. No model, no lm-eval run."""

from __future__ import annotations

import json

from axolotl_nextai.eval.runner import Scored
from axolotl_nextai.eval.stats import compare, table_row
from axolotl_nextai.eval.tables import source_note
from axolotl_nextai.eval.tasks import LOCAL_PREFIX
from axolotl_nextai.eval.writers import write_results


def scored_row(scores: list[float]) -> dict:
    name = f"{LOCAL_PREFIX}mmlu_philosophy"
    row = table_row(
        {
            "results": {name: {"acc,none": sum(scores) / len(scores)}},
            "n-samples": {name: {"effective": len(scores)}},
        }
    )
    row["item_scores"] = {name: scores}
    return row


def test_base_and_tuned_write_one_set_and_a_single_row_drops_the_plot(tmp_path):
    base, tuned = scored_row([0.0, 1.0, 0.0, 0.0]), scored_row([1.0, 1.0, 0.0, 1.0])
    note = source_note("0.4.11", {"*": 4})
    config = {"task": f"{LOCAL_PREFIX}mmlu_philosophy", "dataset_path": "json"}
    both = Scored(
        rows=[("base", base), ("tuned", tuned)],
        results={"results": {"x": {"acc,none": 0.75}}},
        change=compare(base, tuned),
        note=note,
    )
    markdown = write_results(tmp_path, both, [config])
    assert (tmp_path / "results.md").read_text() == markdown and "| change (paired) | +50.0 pts [" in markdown
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["model"] == "tuned" and report["baseline"]["model"] == "base" and report["source"] == note
    assert report["change"]["columns"]["MMLU"]["items_changed"] == 2 and report["lm_eval_results"]["x"]
    assert (tmp_path / "comparison.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "tasks" / f"{LOCAL_PREFIX}mmlu_philosophy.yaml").is_file()

    write_results(tmp_path, Scored(rows=[("tuned", tuned)], results={"results": {}}, change=None, note=note))
    assert not (tmp_path / "comparison.png").exists() and not list((tmp_path / "tasks").glob("*.yaml"))
    assert "baseline" not in json.loads((tmp_path / "results.json").read_text())
