"""What every manifest of `nextai-data` opens with, whichever command wrote it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from data_builders.dedup.embed import resolve_model


def manifest_head(tool: str, model: str) -> dict:
    """The tool and its version, and the embedding model as asked for and as resolved (a bundled copy's folder)."""
    return {
        "tool": {"name": tool, "version": metadata.version("axolotl-nextai")},
        "options": {"embedding_model": model, "embedding_model_resolved": Path(resolve_model(model)).name},
    }
