"""comparison.png: the base and fine-tuned rows of `stats.table_row` as bars with their 95 % intervals."""

from __future__ import annotations

import io

from axolotl_nextai.eval.stats import COLUMNS


def plot_comparison(rows: list[tuple[str, dict]]) -> bytes:
    """A PNG: bars per benchmark (score and 95 % interval) for each row, beside each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in COLUMNS if rows[0][1]["scores"][c] is not None and c != "CNN/DM ROUGE-2"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(rows)
    for i, (label, row) in enumerate(rows):
        xs = [j + i * width for j in range(len(columns))]
        values = [100 * row["scores"][c] for c in columns]
        errors = [
            [100 * (row["scores"][c] - row["intervals"][c][0]) for c in columns],
            [100 * (row["intervals"][c][1] - row["scores"][c]) for c in columns],
        ]
        ax.bar(xs, values, width, yerr=errors, capsize=4, label=label)
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(columns))], columns)
    ax.set_ylabel("accuracy (%), 95 % interval")
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    plt.close(fig)
    return png.getvalue()
