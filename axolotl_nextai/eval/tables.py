"""results.md: the rows of `stats.table_row` as a Table-8-shaped Markdown table, and the line saying where the
numbers come from (lm-eval's, not HELM's: they track a model across our runs, not the leaderboard)."""

from __future__ import annotations

import math

from axolotl_nextai.eval.stats import COLUMNS
from axolotl_nextai.eval.tasks import describe_limits

# Table 8 columns only HELM computes (CNN/DM bias metrics); shown as such, never filled in.
HELM_ONLY = (
    "CNN/DM stereotypes (race)",
    "CNN/DM stereotypes (gender)",
    "CNN/DM representation (race)",
    "CNN/DM representation (gender)",
)
SOURCE_NOTE = (
    "lm-evaluation-harness {version} scores (not HELM's: prompts, shots and metrics differ), "
    "{limit}; 95 % intervals: normal approximation, Agresti-Coull standard errors"
)


def source_note(lm_eval_version: str, limits: dict[str, int | None]) -> str:
    return SOURCE_NOTE.format(version=lm_eval_version, limit=describe_limits(limits))


def fmt_score(column: str, value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "—"
    if column == "CNN/DM ROUGE-2":
        return f"{value:.3f}"
    cell = f"{100 * value:.1f} %"
    return cell + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")


def fmt_change(change: dict | None) -> str:
    if change is None:
        return "—"
    if not change.get("items_changed", 1):
        return "no answer changed"
    low, high = change["interval"] or (math.nan, math.nan)
    return f"{100 * change['change']:+.1f} pts [{100 * low:+.1f}, {100 * high:+.1f}]"


def to_markdown(rows: list[tuple[str, dict]], note: str, change: dict | None = None) -> str:
    """A Table-8-shaped Markdown table: a row per model (score and 95 % interval per benchmark, "—" where
    nothing ran, HELM-only columns marked), then the paired change and the items each column scored."""
    heldout = any(row.get("heldout") for _, row in rows)
    header = ["Model", *COLUMNS, *(["held-out loss"] if heldout else []), *HELM_ONLY]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in rows:
        cells = [label] + [fmt_score(c, row["scores"][c], row["intervals"][c]) for c in COLUMNS]
        if heldout:
            loss = (row.get("heldout") or {}).get("loss")
            cells.append("—" if loss is None else f"{loss:.4f}")
        lines.append("| " + " | ".join(cells + ["HELM only"] * len(HELM_ONLY)) + " |")
    if change is not None:
        cells = ["change (paired)"] + [fmt_change(change["columns"].get(c)) for c in COLUMNS]
        if heldout:
            held = change.get("heldout")
            cells.append(
                "—"
                if held is None
                else f"{held['change']:+.4f}"
                + (f" [{held['interval'][0]:+.4f}, {held['interval'][1]:+.4f}]" if held["interval"] else "")
            )
        lines.append("| " + " | ".join(cells + [""] * len(HELM_ONLY)) + " |")
    _, first = rows[0]
    counts = [
        f"{first['items'][c]} ({first['n_tasks'][c]} subj.)" if c == "MMLU" else str(first["items"][c])
        for c in COLUMNS
    ]
    if heldout:
        held = first.get("heldout") or {}
        skipped = (
            f" ({held['skipped_rows']} with no response token within {held['cutoff']} skipped)"
            if held.get("skipped_rows")
            else ""
        )
        counts.append(f"{held.get('rows', 0)} rows, {held.get('tokens', 0):,} tokens{skipped}")
    lines.append("| items scored | " + " | ".join(counts + [""] * len(HELM_ONLY)) + " |")
    return "\n".join(lines) + f"\n\n{note}.\n"
