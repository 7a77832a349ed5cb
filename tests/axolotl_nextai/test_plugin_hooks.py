"""The plugin's model hooks on their own: the seed before the adapter, and the speed and memory levers' glue."""

import logging

import torch
from axolotl.utils.dict import DictDefault
from transformers import LlamaConfig, LlamaForCausalLM

from axolotl_nextai.plugin import NextAIPlugin

PLUGIN = ["axolotl_nextai.NextAIPlugin"]


def test_the_adapter_is_drawn_after_the_configs_seed():
    NextAIPlugin().pre_lora_load(DictDefault(plugins=PLUGIN, seed=42), model=None)
    drawn = torch.rand(3)
    torch.manual_seed(42)
    assert torch.equal(drawn, torch.rand(3))


def small_llama() -> LlamaForCausalLM:
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                        num_attention_heads=4, num_key_value_heads=2))


def test_post_model_load_tiles_each_mlp_and_moves_the_embeddings():
    model = small_llama()
    model.get_input_embeddings().weight.requires_grad_(False)
    mlp_forwards = [layer.mlp.forward for layer in model.model.layers]
    cfg = DictDefault(plugins=PLUGIN, nextai_tiled_mlp_shards=2, nextai_embeddings_on_cpu=True)
    NextAIPlugin().post_model_load(cfg, model)
    assert all(layer.mlp.forward is not old for layer, old in zip(model.model.layers, mlp_forwards))
    assert "weight" in dict(model.get_input_embeddings().named_buffers())


def test_post_model_build_routes_the_4bit_projections_and_keeps_checkpointing_non_reentrant(tiny_model, caplog):
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    model = AutoModelForCausalLM.from_pretrained(tiny_model, quantization_config=qlora_quantization(), device_map="cpu")
    cfg = DictDefault(plugins=PLUGIN, nextai_saved_matmuls=["up_proj", "gate_proj", "up_proj"])
    with caplog.at_level(logging.INFO):
        NextAIPlugin().post_model_build(cfg, model)
    assert "nextai_saved_matmuls: not recomputed in 4 layers: gate_proj, up_proj kept from the forward" in caplog.text
    routed = [name for name, module in model.named_modules() if "forward" in vars(module)]
    assert len(routed) == 8 and all(name.endswith(("gate_proj", "up_proj")) for name in routed)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})  # as a caller may
    checkpoint = model.model.layers[0]._gradient_checkpointing_func
    assert checkpoint.keywords["use_reentrant"] is False
