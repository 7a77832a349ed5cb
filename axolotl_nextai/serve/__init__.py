"""`nextai-serve`: a base model + LoRA adapter behind the HELM HTTP API the challenge evaluated with."""

import importlib

# Loaded on first use, so that the client (`make demo` asks the server with it) and the CLI's check for the
# [serve] extra run without FastAPI, which the app imports.
_HOMES = {
    "create_app": "axolotl_nextai.serve.app",
    "HelmModel": "axolotl_nextai.serve.helm_model",
    "Limits": "axolotl_nextai.serve.helm_model",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'axolotl_nextai.serve' has no attribute {name!r}")
