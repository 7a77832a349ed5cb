"""Keep the input embeddings in CPU memory (`nextai_embeddings_on_cpu`): 500 MiB of Llama-2-70B's GPU memory.

Under LoRA the embeddings are frozen and only looked up, once per micro-step, outside the checkpointed layers:
the lookup runs on the CPU and its output (tokens x hidden in bf16, 64 MiB at 4,096 tokens) is copied to the
GPU, the same values. The weight becomes a buffer, so that `model.device` (the first parameter's device, which
transformers and Axolotl read) stays the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch

TRAINED = "only frozen embeddings can live on the CPU"
TIED = "the input embeddings are tied to the output layer, which must stay on the GPU"
HOME = "_nextai_embeddings_device"  # on a moved embedding: the device its weight came from


class EmbeddingsOnCpu:
    key = "nextai_embeddings_on_cpu"
    hook = "post_model_load"  # after the adapter: what it trains is known
    distributed = False  # moves a parameter off the GPU, where DDP and FSDP keep every parameter of a rank

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        problems = []
        if cfg.get("adapter") not in ("lora", "qlora"):
            problems.append(
                f"`{self.key}`: without a LoRA adapter (adapter: {cfg.get('adapter')!r}) the input "
                f"embeddings are trained; {TRAINED}: remove the key"
            )
        saved = cfg.get("lora_modules_to_save") or []
        if "embed_tokens" in saved:
            problems.append(f"`{self.key}`: lora_modules_to_save trains embed_tokens; {TRAINED}: remove one")
        if launch.architecture is not None and launch.architecture.tie_word_embeddings:
            problems.append(
                f"`{self.key}`: {TIED} (tie_word_embeddings in the base model's config.json): remove the key"
            )
        return problems

    def install(self, cfg: Mapping, model: torch.nn.Module) -> str:
        """Move the input embeddings' weight to the CPU and look tokens up there."""
        self.uninstall(model)
        embeddings = model.get_input_embeddings()
        weight = embeddings.weight
        if weight.requires_grad:
            raise ConfigError(
                f"{self.key}: the input embeddings are trained here (e.g. listed in "
                f"lora_modules_to_save); {TRAINED}"
            )
        output = model.get_output_embeddings()
        if output is not None and output.weight is weight:
            raise ConfigError(f"{self.key}: {TIED}")
        device = weight.device
        del embeddings.weight
        embeddings.register_buffer("weight", weight.detach().to("cpu"), persistent=True)
        vars(embeddings)[HOME] = device
        lookup = embeddings.forward

        def forward(input_ids):
            return lookup(input_ids.to(embeddings.weight.device)).to(device)

        patch(embeddings, "forward", forward, self.key)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the freed block goes back to the card, not to the allocator's cache
        moved = weight.numel() * weight.element_size()
        return f"{self.key}: input embeddings ({moved / 2**20:,.0f} MiB) looked up on the CPU"

    def uninstall(self, model: torch.nn.Module) -> None:
        """The weight back on its device as a frozen parameter, the module's own lookup."""
        embeddings = model.get_input_embeddings()
        device = vars(embeddings).pop(HOME, None)
        if device is None:
            return
        weight = embeddings.weight
        del embeddings.weight
        embeddings.weight = torch.nn.Parameter(weight.to(device), requires_grad=False)
        unpatch(embeddings, self.key)
