"""Known, harmless third-party lines that every successful run printed, silenced one by one.

Each entry names the logger (or warning module) and the exact message it silences, and why it is harmless;
anything else still prints. Installed by our CLIs before they import torch, and by the plugin (the training
CLI has imported torch by then: lines printed at Axolotl's own import come before any plugin code runs).
"""

from __future__ import annotations

import logging
import re
import warnings

# (logger, message pattern, why it is harmless)
LOG_LINES = (
    (
        "torchao",
        r"Failed to load .*/torchao/_C\w*\.(cpython-\S+|abi3)\.so: ",
        "torchao's CUDA-only kernels (MX FP8, CUTLASS sm90a): a build without them uses none of them",
    ),
    (
        "torch.utils._pytree",
        r"<enum '\w+'> is an Enum subclass and is now natively supported by torch.compile",
        "torchao registers two enums the way torch 2.13 deprecates; nothing here compiles them",
    ),
    (
        "bitsandbytes.backends.cpu.ops",
        r"Failed to load CPU gemm_4bit_forward from kernels-community: ",
        "an optional CPU kernel fetched from the Hub; offline, bitsandbytes uses its own CPU 4-bit matmul",
    ),
    (
        "transformers.modeling_utils",
        r"`loss_type=None` was set in the config but it is unrecognized",
        "OpenVINO's conversion of the embedding model reads its `loss_function` property; embedding "
        "computes no loss",
    ),
    (
        "lm_eval.models.huggingface",
        r"`pretrained` model kwarg is not of type `str`",
        "nextai-eval hands lm-eval the base + adapter it loaded, on purpose, in one process",
    ),
    (
        "lm_eval.models.huggingface",
        r"Passed an already-initialized model through `pretrained`",
        "the same: a loaded model, one process",
    ),
)
# (warning category, message pattern, module that warns, why)
WARNINGS = (
    (
        UserWarning,
        r"Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because",
        r"bitsandbytes\.backends\.cpu\.ops",
        "the same optional kernel: offline, nothing is downloaded, so there is nothing to check",
    ),
)


class DropMatching(logging.Filter):
    """Drops the records of one logger whose message matches `pattern`."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


def silence_known_noise() -> None:
    """Install the filters above (idempotent)."""
    for name, pattern, _why in LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMatching) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(DropMatching(pattern))
    for category, message, module, _why in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
