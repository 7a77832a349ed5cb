"""Rows that train nothing: every label masked (-100), because the prompt fills `sequence_len` (the Alpaca
template alone is ~40 tokens) or the response is empty. A run of only such rows logs loss 0.0000 and exits 0
having learned nothing, so it is refused before the model loads; some such rows are counted in a warning.
"""

from __future__ import annotations

from axolotl_nextai.checks.config_checks import ConfigError

IGNORE_INDEX = -100


def rows_without_labels(dataset) -> tuple[int, int]:
    """(rows whose labels are all IGNORE_INDEX, rows) of a tokenized `datasets.Dataset`; (0, 0) without
    labels."""
    import numpy as np
    import pyarrow.compute as pc

    if dataset is None or "labels" not in dataset.column_names:
        return 0, 0
    labels = dataset.with_format("arrow")[:]["labels"]
    labels = labels.combine_chunks() if hasattr(labels, "combine_chunks") else labels
    trained = np.asarray(
        pc.not_equal(pc.list_flatten(labels), IGNORE_INDEX).to_numpy(zero_copy_only=False), bool
    )
    parents = np.asarray(pc.list_parent_indices(labels))
    return len(labels) - len(np.unique(parents[trained])), len(labels)


def check_labels(dataset, sequence_len, where: str | None = None) -> str | None:
    """A ConfigError (naming the config file `where`) when no row of `dataset` has a token to learn; a
    warning's text when some have none."""
    empty, rows = rows_without_labels(dataset)
    if not empty:
        return None
    if empty == rows:
        raise ConfigError(
            f"{where}: "
            * bool(where)
            + f"no training row has a token to learn within sequence_len {sequence_len}: the prompt "
            f"fills all {rows} (every label is masked), so training would log loss 0 and learn "
            "nothing; raise sequence_len"
        )
    return (
        f"{empty} of {rows} training rows have no token to learn within sequence_len {sequence_len} (the "
        "prompt fills them): they cost compute and train nothing"
    )
