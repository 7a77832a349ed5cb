"""What every manifest of `nextai-data` opens with, whichever command wrote it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from data_builders.dedup.embed import resolve_model


def manifest_head(tool: str, model: str) -> dict:
    """The tool and its version (a clone run without installing says so), and the embedding model as asked for
    and as resolved (a bundled copy's folder)."""
    try:
        version = metadata.version("axolotl-nextai")
    except metadata.PackageNotFoundError:
        version = "not installed (run from a clone)"
    return {
        "tool": {"name": tool, "version": version},
        "options": {"embedding_model": model, "embedding_model_resolved": Path(resolve_model(model)).name},
    }
