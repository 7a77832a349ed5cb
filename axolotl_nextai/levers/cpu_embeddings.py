"""Keep the input embeddings in CPU memory (`nextai_embeddings_on_cpu`): 500 MiB of Llama-2-70B's GPU memory.

Under LoRA the embeddings are frozen and only looked up, once per micro-step, outside the checkpointed layers:
the lookup runs on the CPU and its output (tokens x hidden in bf16, 64 MiB at 4,096 tokens) is copied to the
GPU, the same values. The weight becomes a buffer, so that `model.device` (the first parameter's device, which
transformers and Axolotl read) stays the GPU.
"""

from __future__ import annotations

import torch

from axolotl_nextai.checks.config_checks import ConfigError


def move_embeddings_to_cpu(model: torch.nn.Module) -> int:
    """Move the input embeddings' weight to the CPU and look tokens up there; returns the bytes moved."""
    embeddings = model.get_input_embeddings()
    weight = embeddings.weight
    if weight.requires_grad:
        raise ConfigError("nextai_embeddings_on_cpu: the input embeddings are trained here (e.g. listed in "
                          "lora_modules_to_save); only frozen embeddings can live on the CPU")
    output = model.get_output_embeddings()
    if output is not None and output.weight is weight:
        raise ConfigError("nextai_embeddings_on_cpu: the input embeddings are tied to the output layer, which "
                          "must stay on the GPU")
    device = weight.device
    del embeddings.weight
    embeddings.register_buffer("weight", weight.detach().to("cpu"), persistent=True)
    lookup = embeddings.forward

    def forward(input_ids):
        return lookup(input_ids.to(embeddings.weight.device)).to(device)

    embeddings.forward = forward
    return weight.numel() * weight.element_size()
