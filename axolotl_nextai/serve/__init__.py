"""`nextai-serve`: a base model + LoRA adapter behind the HELM HTTP API the challenge evaluated with."""

from axolotl_nextai.serve.app import create_app
from axolotl_nextai.serve.helm_model import HelmModel, Limits

__all__ = ["HelmModel", "Limits", "create_app"]
