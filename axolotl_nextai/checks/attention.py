"""FlashAttention-2 fallback: a recipe written for an A100 must still run where `flash_attn` is missing.

The paper trained with FlashAttention-2. Without the `flash_attn` package, Axolotl refuses
`attn_implementation: flash_attention_2` at validation on a CUDA machine and fails at model load on a CPU one.
PyTorch's SDPA computes the same attention (on an H100 it picks cuDNN's flash kernels), so by default we
switch to it with one warning; `nextai_require_flash_attention: true` makes the missing package an error
instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from axolotl_nextai.checks.config_checks import ConfigError
from data_builders.extras import installed

FLASH = "flash_attention_2"
FALLBACK = "sdpa"


def flash_attn_installed() -> bool:
    """Whether the `flash_attn` package can be imported (without importing it: that loads CUDA kernels)."""
    return installed("flash_attn")


def wants_flash_attention(cfg: Mapping) -> bool:
    """`attn_implementation: flash_attention_2`, or the deprecated `flash_attention: true` that Axolotl maps
    to it."""
    return cfg.get("attn_implementation") == FLASH or (
        cfg.get("flash_attention") is True and not cfg.get("attn_implementation")
    )


def resolve_attention(cfg: Mapping, flash_available: bool, require: bool = False) -> tuple[dict, str | None]:
    """The key changes that make `cfg` loadable, and the warning to log; `({}, None)` when nothing changes.

    A value of None in the changes means "remove the key" (the deprecated `flash_attention` flag, which
    Axolotl would otherwise turn back into flash_attention_2). Raises ConfigError when `require` forbids the
    fallback.
    """
    if flash_available or not wants_flash_attention(cfg):
        return {}, None
    if require:
        raise ConfigError(
            f"attention: the config asks for {FLASH} and `nextai_require_flash_attention` is true, but the "
            "`flash_attn` package is not installed; install it (pip install 'axolotl-nextai[flash-attn]') "
            "or set `nextai_require_flash_attention: false` to train with "
            f"`attn_implementation: {FALLBACK}`."
        )
    changes: dict = {"attn_implementation": FALLBACK}
    if "flash_attention" in cfg:
        changes["flash_attention"] = None
    message = (
        f"axolotl-nextai: the config asks for {FLASH} but the `flash_attn` package is not installed; "
        f"training with `attn_implementation: {FALLBACK}` (PyTorch SDPA) instead. Install flash-attn to "
        "match the paper, or set `nextai_require_flash_attention: true` to make this an error."
    )
    return changes, message


def apply_changes(cfg, changes: Mapping) -> None:
    """Apply `resolve_attention`'s changes to the raw config in place (Axolotl validates that same object)."""
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
