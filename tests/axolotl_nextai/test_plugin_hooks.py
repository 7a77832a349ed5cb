"""The plugin's hooks on their own: the seed before the adapter, the levers' glue, and `register`: every
problem at once, the levers' refusal under several processes, its config edits undone when Axolotl rejects the
config."""

import logging

import pytest
import torch
from axolotl.utils.dict import DictDefault
from transformers import LlamaConfig, LlamaForCausalLM

from axolotl_nextai.plugin import NextAIPlugin

PLUGIN = ["axolotl_nextai.NextAIPlugin"]


@pytest.fixture(autouse=True, scope="module")
def plugin_loaded_as_axolotl_loads_it():
    """`register` checks that every listed plugin imported (Axolotl's PluginManager holds them): load ours
    there, as Axolotl does for a config that lists it, so these tests do not depend on one run before them."""
    from axolotl.integrations.base import PluginManager

    PluginManager.get_instance().register(PLUGIN[0])


def test_the_adapter_is_drawn_after_the_configs_seed():
    NextAIPlugin().pre_lora_load(DictDefault(plugins=PLUGIN, seed=42), model=None)
    drawn = torch.rand(3)
    torch.manual_seed(42)
    assert torch.equal(drawn, torch.rand(3))


def small_llama() -> LlamaForCausalLM:
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )


def test_post_model_load_tiles_each_mlp_and_moves_the_embeddings():
    model = small_llama()
    model.get_input_embeddings().weight.requires_grad_(False)
    mlp_forwards = [layer.mlp.forward for layer in model.model.layers]
    cfg = DictDefault(plugins=PLUGIN, nextai_tiled_mlp_shards=2, nextai_embeddings_on_cpu=True)
    NextAIPlugin().post_model_load(cfg, model)
    assert all(
        layer.mlp.forward is not old for layer, old in zip(model.model.layers, mlp_forwards, strict=True)
    )
    assert "weight" in dict(model.get_input_embeddings().named_buffers())


def test_post_model_build_routes_the_4bit_projections_and_keeps_checkpointing_non_reentrant(
    tiny_model, caplog
):
    from transformers import AutoModelForCausalLM

    from axolotl_nextai.models.checkpoint import qlora_quantization

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model, quantization_config=qlora_quantization(), device_map="cpu"
    )
    cfg = DictDefault(plugins=PLUGIN, nextai_saved_matmuls=["up_proj", "gate_proj", "up_proj"])
    with caplog.at_level(logging.INFO):
        NextAIPlugin().post_model_build(cfg, model)
    assert (
        "nextai_saved_matmuls: not recomputed in 4 layers: gate_proj, up_proj kept from the forward"
        in caplog.text
    )
    routed = [name for name, module in model.named_modules() if "forward" in vars(module)]
    assert len(routed) == 8 and all(name.endswith(("gate_proj", "up_proj")) for name in routed)
    # as a caller may
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    checkpoint = model.model.layers[0]._gradient_checkpointing_func
    assert checkpoint.keywords["use_reentrant"] is False


# --- register: every problem at once, the levers' refusals, and its edits undone ----------------------------


def test_every_problem_of_a_config_is_reported_at_once(tmp_path):
    from axolotl_nextai.checks.config_checks import ConfigError

    cfg = {
        "plugins": PLUGIN,
        "axolotl_config_path": "cfg.yml",
        "lora_r": -4,
        "lora_alpah": 16,
        "nextai_saved_matmuls": ["down_proj"],
        "load_in_4bit": True,
        "nextai_fuse_accumulation": True,
        "sample_packing": True,
        "datasets": [{"path": str(tmp_path / "v5.jsonl"), "type": "axolotl_nextai.alpaca"}],
    }
    with pytest.raises(ConfigError) as error:
        NextAIPlugin().register(cfg)
    message = str(error.value)
    assert message.startswith(
        "cfg.yml: unknown key `lora_alpah` (did you mean `lora_alpha`?); `lora_r`: must be > 0"
    )
    for part in (
        "`nextai_saved_matmuls` changes what gradient checkpointing recomputes",
        "nextai_fuse_accumulation needs unpacked rows",
        "v5.jsonl` does not exist",
    ):
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "several", [{"world_size": 2}, {"fsdp_version": 2, "fsdp_config": {"reshard": True}}]
)
def test_a_lever_not_tested_with_several_processes_is_refused_there(several):
    from axolotl_nextai.checks.config_checks import ConfigError

    cfg = {"plugins": PLUGIN, "nextai_check_datasets": False, "nextai_tiled_mlp_shards": 2, **several}
    with pytest.raises(
        ConfigError,
        match="`nextai_tiled_mlp_shards` is not tested with (a world size of 2|FSDP "
        r"\(fsdp_config, fsdp_version\)) yet: remove it, or train in one process",
    ):
        NextAIPlugin().register(cfg)


def test_a_rejected_config_gets_back_what_register_changed(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "Say hi.", "output": "hi"}\n')
    cfg = DictDefault(
        plugins=PLUGIN,
        base_model="meta-llama/Llama-2-70b-hf",
        lora_mlp_kernel=True,
        attn_implementation="flash_attention_2",
        dataset_prepared_path=str(tmp_path / "prepared"),
        datasets=[{"path": str(data), "type": "axolotl_nextai.alpaca"}],
    )
    written = cfg.to_dict()
    plugin = NextAIPlugin()
    plugin.register(cfg)
    if not torch.cuda.is_available():  # no flash_attn on a CPU machine: sdpa; the LoRA kernels off
        assert (
            cfg.attn_implementation == "sdpa"
            and cfg.lora_mlp_kernel is False
            and cfg.lora_qkv_kernel is False
        )
    assert cfg.dataset_prepared_path.startswith(str(tmp_path / "prepared" / "data-sha256-"))
    plugin.on_config_validation_error(cfg)
    assert cfg.to_dict() == written


def test_an_unknown_base_model_is_said_once(caplog):
    cfg = {"plugins": PLUGIN, "nextai_check_datasets": False, "base_model": "NousResearch/Llama-2-70b-hf"}
    with caplog.at_level(logging.WARNING):
        NextAIPlugin().register(cfg)
    assert (
        caplog.text.count(
            "base_model 'NousResearch/Llama-2-70b-hf' has no config.json on this machine and is "
            "not in axolotl_nextai/models/architectures.py: the memory checks are skipped"
        )
        == 1
    )


def test_the_trainer_class_is_fused_only_where_there_is_accumulation_to_fuse():
    from axolotl.core.trainers import AxolotlTrainer

    from axolotl_nextai.levers.fused_accumulation import FusedAccumulationMixin

    fused = NextAIPlugin().get_trainer_cls(
        DictDefault(plugins=PLUGIN, nextai_fuse_accumulation=True, gradient_accumulation_steps=4)
    )
    assert issubclass(fused, FusedAccumulationMixin) and issubclass(fused, AxolotlTrainer)
    assert (
        NextAIPlugin().get_trainer_cls(
            DictDefault(plugins=PLUGIN, nextai_fuse_accumulation=True, gradient_accumulation_steps=1)
        )
        is None
    )
