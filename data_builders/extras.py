"""The optional features and the pyproject extra that installs each: training needs none of them, so a plain
`pip install axolotl-nextai` leaves out the server, the benchmark harness, the GGUF reader and the CPU
speed-ups.

A feature whose package is missing says which `pip install` fixes it, in one line, before any heavy work (as
datatrove checks a step's dependencies when the step is built). Presence is looked up, not imported: checking
costs nothing, and where a backend is chosen automatically (OpenVINO) an absent one is simply not chosen.
"""

from __future__ import annotations

import importlib.util

from data_builders.errors import DataError

PACKAGE = "axolotl-nextai"
# extra -> {module as imported: distribution as pyproject.toml lists it}; a test holds the two in step
EXTRAS = {
    "serve": {"fastapi": "fastapi", "uvicorn": "uvicorn"},
    "eval": {"lm_eval": "lm-eval", "rouge_score": "rouge-score"},
    "real-model": {"gguf": "gguf"},
    "dedup-fast": {
        "openvino": "openvino",
        "model2vec": "model2vec",
        "skeletoken": "skeletoken",
        "usearch": "usearch",
    },
}


class MissingExtra(DataError):
    """A feature's optional package is not installed: the message names the extra to install."""


def installed(module: str) -> bool:
    """Whether the top-level `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken entry in sys.modules reads as absent
        return False


def install_hint(extra: str) -> str:
    return f"pip install '{PACKAGE}[{extra}]'"


def require_extra(feature: str, extra: str, *modules: str) -> None:
    """Raise MissingExtra naming `feature`, what is missing and the extra, unless every one of `modules` (by
    default, all that `extra` installs) is installed."""
    distributions = {m: EXTRAS[extra][m] for m in modules or EXTRAS[extra]}  # KeyError: not in that extra
    missing = [name for module, name in distributions.items() if not installed(module)]
    if missing:
        raise MissingExtra(f"{feature} needs {', '.join(missing)}: {install_hint(extra)}")
