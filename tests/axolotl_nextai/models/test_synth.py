"""nextai-synth: pre-quantized NF4 checkpoints that transformers and Axolotl load like real ones (tiny config,
CPU)."""

import json

import pytest
from click.testing import CliRunner

from axolotl_nextai.models.synth import PRESETS, main, write_synthetic_llama


@pytest.fixture(scope="module")
def synth_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    nf4 = write_synthetic_llama(PRESETS["tiny"], root / "nf4", quantize=True, seed=3, device="cpu")
    bf16 = write_synthetic_llama(PRESETS["tiny"], root / "bf16", quantize=False, seed=3, device="cpu")
    return nf4, bf16


def test_nf4_checkpoint_is_the_bf16_one_quantized(synth_pair):
    from bitsandbytes.nn import Linear4bit
    from transformers import AutoModelForCausalLM

    nf4, bf16 = synth_pair
    config = json.loads((nf4 / "config.json").read_text())
    qc = config["quantization_config"]
    assert (qc["quant_method"], qc["bnb_4bit_quant_type"], qc["bnb_4bit_use_double_quant"]) == (
        "bitsandbytes",
        "nf4",
        True,
    )
    assert qc["bnb_4bit_compute_dtype"] == "bfloat16"

    quantized = AutoModelForCausalLM.from_pretrained(nf4)
    plain = AutoModelForCausalLM.from_pretrained(bf16)
    o_proj = quantized.model.layers[0].self_attn.o_proj
    assert isinstance(o_proj, Linear4bit) and o_proj.weight.quant_state.nested
    assert not isinstance(quantized.lm_head, Linear4bit)  # the head stays bf16, as transformers quantizes

    from bitsandbytes.functional import dequantize_4bit

    for q_layer, p_layer in zip(quantized.model.layers, plain.model.layers, strict=True):
        for name in ("self_attn.q_proj", "mlp.down_proj"):
            q = q_layer.get_submodule(name).weight
            reference = p_layer.get_submodule(name).weight.float()
            restored = dequantize_4bit(q.data, q.quant_state).float()
            rel = (restored - reference).norm() / reference.norm()
            assert rel < 0.12, (name, rel)  # NF4 of Gaussian weights: ~0.1 relative error, not a mismatch


def test_same_seed_same_bytes_and_no_partial_output(synth_pair, tmp_path):
    nf4, _ = synth_pair
    again = write_synthetic_llama(PRESETS["tiny"], tmp_path / "again", quantize=True, seed=3, device="cpu")
    for shard in sorted(nf4.glob("*.safetensors")):
        assert (again / shard.name).read_bytes() == shard.read_bytes()
    with pytest.raises(FileExistsError):
        write_synthetic_llama(PRESETS["tiny"], again, quantize=True, device="cpu")
    assert not list(tmp_path.glob(".*partial"))


def test_cli_takes_a_config_json_and_names_missing_keys(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 128}))
    result = CliRunner().invoke(main, ["--config", str(config), "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "missing intermediate_size" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_axolotl_trains_qlora_on_the_prequantized_checkpoint(plain_nf4):
    """The GPU proof's code path on CPU: the real CLI loads the NF4 checkpoint and trains the paper's adapter
    (the run: `plain_nf4` in ../conftest.py, which the memory levers' runs are compared with)."""
    _, _, report = plain_nf4
    assert report["steps"] == 4 and report["loss_finite"]
    hidden, inter, layers, r = 128, 256, 4, 4
    assert report["trainable_params"] == layers * r * (2 * hidden + hidden + inter)


def test_nf4_stored_as_bf16_holds_the_same_bytes_and_says_so(synth_pair, tmp_path):
    """`--dtype nf4-bf16`: what FSDP can shard (several GPUs); the packed weights are the uint8 ones'
    bytes."""
    from safetensors.torch import load_file

    nf4, _ = synth_pair
    shardable = write_synthetic_llama(
        PRESETS["tiny"], tmp_path / "nf4-bf16", quantize=True, seed=3, device="cpu", quant_storage="bfloat16"
    )
    config = json.loads((shardable / "config.json").read_text())
    assert config["quantization_config"]["bnb_4bit_quant_storage"] == "bfloat16"
    name, shard = "model.layers.0.self_attn.o_proj.weight", "model-00001-of-00005.safetensors"
    packed, stored = load_file(nf4 / shard)[name], load_file(shardable / shard)[name]
    assert stored.dtype.is_floating_point and stored.view(packed.dtype).flatten().equal(packed.flatten())
