"""Every YAML key the nextAI plugin reads, with its default. Axolotl merges this model into its own config."""

from __future__ import annotations

from pydantic import BaseModel, Field


class NextAIArgs(BaseModel):
    """Keys of `plugins: [axolotl_nextai.NextAIPlugin]`; all prefixed `nextai_`."""

    nextai_report: bool = Field(
        default=True,
        description="Write <output_dir>/nextai_report.json: per-step loss, first/final loss, trainable parameters.",
    )
    nextai_check_datasets: bool = Field(
        default=True,
        description="Before anything loads, fail if a local dataset file is missing, naming it and how to build it.",
    )
    nextai_require_flash_attention: bool = Field(
        default=False,
        description="Fail when the config asks for flash_attention_2 and flash_attn is missing, instead of "
        "falling back to sdpa with a warning.",
    )
