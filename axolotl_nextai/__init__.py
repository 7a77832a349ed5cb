"""axolotl-nextai: nextAI's NeurIPS 2023 LLM Efficiency Challenge recipe as an Axolotl plugin."""

__all__ = ["NextAIPlugin"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that the data builders and the tiny-model builder do not pay Axolotl's import time.
    if name == "NextAIPlugin":
        from axolotl_nextai.plugin import NextAIPlugin

        return NextAIPlugin
    raise AttributeError(f"module 'axolotl_nextai' has no attribute {name!r}")
