"""Load a trained run for inference, the way it was trained: base model + LoRA adapter, 4-bit on a GPU.

`nextai-serve` and `nextai-eval` name the two as `--base-model` and `--adapter`; `check_model_paths` looks at
local folders before anything loads, and `load_base_and_adapter` reports a load failure as one line naming the
option.
"""

from __future__ import annotations

from pathlib import Path

from data_builders.errors import first_line

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # peft's two formats


def looks_local(value: str) -> bool:
    """A path on disk rather than a Hub id (`org/name`): it exists, starts with / . ~, or has several
    parts."""
    return Path(value).expanduser().exists() or value.startswith(("/", ".", "~")) or value.count("/") > 1


class ModelPathError(ValueError):
    """A base model or adapter that cannot be loaded; the message names the option and the path."""


def check_model_paths(base_model: str, adapter: str | None) -> None:
    """A local base model is a folder with config.json; a local adapter a folder with adapter_config.json
    beside its weights (a run killed before its final save leaves neither, or only checkpoint-N folders)."""
    if looks_local(base_model):
        folder = Path(base_model).expanduser()
        if not folder.is_dir():
            raise ModelPathError(f"--base-model {base_model}: no such folder")
        if not (folder / "config.json").is_file():
            raise ModelPathError(f"--base-model {base_model}: no config.json in it, so not a model folder")
    if adapter is not None and looks_local(adapter):
        folder = Path(adapter).expanduser()
        if not folder.is_dir():
            raise ModelPathError(f"--adapter {adapter}: no such folder")
        if not (folder / ADAPTER_CONFIG).is_file():
            raise ModelPathError(
                f"--adapter {adapter}: no {ADAPTER_CONFIG} in it (a run's output_dir after "
                "training, or one of its checkpoint-N folders)"
            )
        if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
            raise ModelPathError(
                f"--adapter {adapter}: {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS[0]}: the run "
                "did not finish; use one of its checkpoint-N folders"
            )


def qlora_quantization():
    """The paper's QLoRA 4-bit storage (Table 2): NF4, double quant, bf16 compute, as a
    `BitsAndBytesConfig`."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_base_and_adapter(base_model: str, adapter: str | None = None, load_in_4bit: bool | None = None):
    """(model, tokenizer) in eval mode. NF4 + double quant + bf16 compute (Table 2) when `load_in_4bit`, which
    defaults to "a CUDA GPU is present"; plain fp32 on CPU, where the tiny model runs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    if load_in_4bit is None:
        load_in_4bit = cuda
    quant = qlora_quantization() if load_in_4bit else None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base_model,
            quantization_config=quant,
            dtype=torch.bfloat16 if cuda else torch.float32,
            device_map="auto" if cuda else None,
        )
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError) as err:
        raise ModelPathError(f"--base-model {base_model}: cannot load ({first_line(err)})") from None
    if adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter)
        except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: shapes that do not fit the base
            raise ModelPathError(
                f"--adapter {adapter}: cannot load onto {base_model} ({first_line(err)})"
            ) from None
    return model.eval(), tokenizer
