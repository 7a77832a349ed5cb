"""The plugin's model hooks on their own: the seed before the adapter, and the memory levers' glue."""

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


def test_post_model_load_tiles_each_mlp_and_moves_the_embeddings():
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=4, num_key_value_heads=2))
    model.get_input_embeddings().weight.requires_grad_(False)
    mlp_forwards = [layer.mlp.forward for layer in model.model.layers]
    cfg = DictDefault(plugins=PLUGIN, nextai_tiled_mlp_shards=2, nextai_embeddings_on_cpu=True)
    NextAIPlugin().post_model_load(cfg, model)
    assert all(layer.mlp.forward is not old for layer, old in zip(model.model.layers, mlp_forwards))
    assert "weight" in dict(model.get_input_embeddings().named_buffers())
