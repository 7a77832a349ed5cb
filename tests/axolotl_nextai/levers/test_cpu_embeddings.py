"""nextai_embeddings_on_cpu: the same logits and gradients with the input embeddings looked up on the CPU, and
the model still reports the device of its other weights."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from axolotl_nextai.checks.config_checks import ConfigError
from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.cpu_embeddings import EmbeddingsOnCpu
from axolotl_nextai.models.architectures import ARCHITECTURES

LEVER, ON = EmbeddingsOnCpu(), {"nextai_embeddings_on_cpu": True}


def tiny_llama(tied: bool = False) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config)
    model.get_input_embeddings().weight.requires_grad_(False)  # frozen, as under LoRA
    return model


def logits_and_grads(model, input_ids):
    model.zero_grad()
    logits = model(input_ids).logits
    logits.float().pow(2).mean().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_same_logits_and_gradients_and_the_weight_is_a_buffer():
    model = tiny_llama()
    model.enable_input_require_grads()  # what Axolotl does for gradient checkpointing with adapters
    input_ids = torch.randint(0, 64, (2, 9))
    expected = logits_and_grads(model, input_ids)
    device = model.device
    log = LEVER.install(ON, model)
    # 64 x 32 x 4 bytes
    assert log == "nextai_embeddings_on_cpu: input embeddings (0 MiB) looked up on the CPU"
    embeddings = model.get_input_embeddings()
    assert "weight" in dict(embeddings.named_buffers()) and "weight" not in dict(
        embeddings.named_parameters()
    )
    assert model.device == device and next(model.parameters()) is not embeddings.weight
    logits, grads = logits_and_grads(model, input_ids)
    torch.testing.assert_close(logits, expected[0], rtol=0, atol=0)
    assert grads.keys() == expected[1].keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[1][name], rtol=0, atol=0)


def test_trained_or_tied_embeddings_stay_where_they_are():
    model = tiny_llama()
    model.get_input_embeddings().weight.requires_grad_(True)
    with pytest.raises(ConfigError, match="only frozen embeddings"):
        LEVER.install(ON, model)
    with pytest.raises(ConfigError, match="tied to the output layer"):
        LEVER.install(ON, tiny_llama(tied=True))


def test_what_the_config_already_says_is_refused_before_loading():
    qlora = {**ON, "adapter": "qlora"}
    assert LEVER.problems(qlora, Launch(architecture=ARCHITECTURES["meta-llama/Llama-2-70b-hf"])) == []
    [tied] = LEVER.problems(qlora, Launch(architecture=ARCHITECTURES[".real-model/SmolLM2-135M-Instruct"]))
    assert tied.startswith("`nextai_embeddings_on_cpu`: the input embeddings are tied to the output layer")
    [full] = LEVER.problems({**ON, "adapter": None}, Launch())
    assert "without a LoRA adapter (adapter: None) the input embeddings are trained" in full
    [saved] = LEVER.problems({**qlora, "lora_modules_to_save": ["embed_tokens", "lm_head"]}, Launch())
    assert "lora_modules_to_save trains embed_tokens" in saved
