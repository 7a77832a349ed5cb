"""Load a trained run for inference, the way it was trained: base model + LoRA adapter, 4-bit on a GPU."""

from __future__ import annotations


def qlora_quantization():
    """The paper's QLoRA 4-bit storage (Table 2): NF4, double quant, bf16 compute, as a `BitsAndBytesConfig`."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def load_model(base_model: str, adapter: str | None = None, load_in_4bit: bool | None = None):
    """(model, tokenizer) in eval mode. NF4 + double quant + bf16 compute (Table 2) when `load_in_4bit`, which
    defaults to "a CUDA GPU is present"; plain fp32 on CPU, where the tiny model runs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    if load_in_4bit is None:
        load_in_4bit = cuda
    quant = qlora_quantization() if load_in_4bit else None
    model = AutoModelForCausalLM.from_pretrained(
        base_model, quantization_config=quant, dtype=torch.bfloat16 if cuda else torch.float32,
        device_map="auto" if cuda else None,
    )
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), AutoTokenizer.from_pretrained(base_model)
