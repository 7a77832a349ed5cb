"""MiniLM on OpenVINO in fp32: the vectors of Sentence-Transformers' torch pass (cosines within ~1e-6, no 0.9
decision changed) in less CPU time, on Intel Xeon and AMD EPYC cores alike
(bench/results/near_dedup-2026-12-01-6000-cpu-openvino.md, near_dedup-2026-12-01-6000-cpu.md: Encoders).

Sentence-Transformers' own `backend="openvino"` needs optimum-intel, whose pins clash with Axolotl's; this is
the glue it would be. The loaded model's own modules (transformer, mean pooling, L2 normalisation) are traced
into one OpenVINO graph by `openvino.convert_model` once per process (2-7 s on two cores against minutes of
embedding: not worth a disk cache) and compiled in fp32: left to itself OpenVINO runs bf16 on CPUs that have
it, which moves cosines by ~3e-3 (a bf16 compile is near-dedup's low-precision screen there, dedup/screen.py).
The model's own tokenizer (truncation at its max_seq_length, 256 for MiniLM) feeds it the batches in the
longest-first order embed.encode gives the rows.

OpenVINO's converter reports usage to Intel (Google Analytics events, counted: 1 on import, 42 per conversion)
unless its `opt_in_out --opt_out` has been run; a data tool should not phone home, so `import_openvino` turns
that off for this process without touching the user's settings.
"""

from __future__ import annotations

import sys
import warnings
from functools import lru_cache

import numpy as np
import torch

INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the tokenizer outputs the graph takes


class Pipeline(torch.nn.Module):
    """A SentenceTransformer's forward with plain tensors in and the sentence embedding out: what tracing
    needs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        return self.model(features)["sentence_embedding"]


def import_openvino():
    """`openvino`, its usage reporting off: its converter falls back to its own no-op stub when
    `openvino_telemetry` cannot be imported. A process that imported `openvino_telemetry` before keeps the
    user's choice."""
    sys.modules.setdefault("openvino_telemetry", None)  # None in sys.modules: `import` raises ImportError
    import openvino

    return openvino


def features(model, texts: list[str]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.preprocess(texts).items() if k in INPUTS}


@lru_cache(maxsize=2)
def converted(model):
    """`model`'s OpenVINO graph, converted once per process (both precisions compile it)."""
    ov = import_openvino()
    # two lengths, so the traced batch has padding and the graph keeps the attention mask's path
    example = features(model, ["A short text.", "A longer text, so that the example batch needs padding."])
    with torch.no_grad(), warnings.catch_warnings():
        # tracing fixes three Python branches (mask padding, is_causal, pooling's mask check) as the example
        # takes them; every batch of this model takes the same ones (test_openvino_encoder.py)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return ov.convert_model(Pipeline(model).eval(), example_input=example)


class OpenVinoEncoder:
    """A loaded SentenceTransformer (on the CPU) converted by OpenVINO and compiled in fp32, or in bf16 as a
    low-precision screen (screen.py) on a CPU that runs bf16 (AMX, AVX512_BF16)."""

    def __init__(self, model, precision: str = "fp32"):
        self.model = model
        hint = {"fp32": "f32", "bf16": "bf16"}[precision]
        self.compiled = (
            import_openvino()
            .Core()
            .compile_model(converted(model), "CPU", {"INFERENCE_PRECISION_HINT": hint})
        )

    def features(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return features(self.model, texts)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit-norm float32 vectors of `texts`, in order, batched as given: embed.encode hands them longest
        first."""
        batches = []
        for start in range(0, len(texts), batch_size):
            batch = self.features(texts[start : start + batch_size])
            batches.append(self.compiled({k: v.numpy() for k, v in batch.items()})[0])
        out = np.concatenate(batches)
        # as encode(normalize_embeddings=True) does again
        return out / np.linalg.norm(out, axis=1, keepdims=True)
