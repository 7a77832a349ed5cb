"""The memory levers through the real `accelerate launch -m axolotl.cli.train` on a pre-quantized NF4
checkpoint: chunked dequantization, the tiled MLP and CPU embeddings train the same losses as without them
(LoRA dropout off, so that both runs compute the same function), and so do kept matmuls
(`nextai_saved_matmuls`, a speed lever: this is where its hooks meet Axolotl's loader and the Trainer) with
the MLP chunked over its features (`nextai_mlp_chunks`); eager attention is refused before loading when a cap
leaves no room for its scores."""

import pytest
from axolotl_launch import tiny_cpu_config

LEVERS = {
    "nextai_dequant_chunk_mib": 0.02,
    "nextai_tiled_mlp_shards": 3,
    "nextai_embeddings_on_cpu": True,
    "nextai_expandable_segments": True,
    "nextai_nf4_dequant_kernel": "triton",
}
# 0.02 MiB: the tiny MLP weights (64 KiB in bf16) in 4 chunks; the Triton dequantization serves CUDA tensors
# only (tests/axolotl_nextai/levers/test_nf4_dequant.py): here its patch is installed and bitsandbytes' path
# trains The runs (`train_nf4`, `plain_nf4`: the plain run, shared with models/test_synth.py) are in
# ../conftest.py.


@pytest.mark.slow
def test_levers_train_the_same_losses(train_nf4, plain_nf4, tmp_path):
    plain_losses = plain_nf4[0]
    levered, log, _ = train_nf4(tmp_path, **LEVERS)
    assert "4-bit weights larger than 0.02 MiB are dequantized 0.02 MiB at a time" in log
    assert "nextai_tiled_mlp_shards: 4 MLPs run in 3 shards" in log
    assert "nextai_embeddings_on_cpu: input embeddings" in log
    assert (
        "nextai_nf4_dequant_kernel: triton: bitsandbytes' NF4 weights dequantized on CUDA by a Triton kernel"
        in log
    )
    assert len(plain_losses) == len(levered) == 4
    assert levered == pytest.approx(plain_losses, rel=1e-4), (plain_losses, levered)


@pytest.mark.slow
def test_kept_matmuls_and_the_chunked_mlp_train_the_same_losses(train_nf4, plain_nf4, tmp_path):
    """Attention's matmuls kept from the forward, the MLP in chunks of its features (with down_proj's adapter,
    which the plugin must hand it after PEFT made it: without it the losses would part)."""
    plain_losses = plain_nf4[0]
    kept, log, _ = train_nf4(tmp_path, nextai_saved_matmuls=["q_proj", "k_proj"], nextai_mlp_chunks=2)
    assert "nextai_saved_matmuls: not recomputed in 4 layers: k_proj, q_proj kept from the forward" in log
    # the Trainer's checkpointed recompute, through Axolotl's CLI, reached the stash
    assert "nextai_saved_matmuls: the first recomputed layer takes 2 kept outputs of 2 targeted" in log
    assert "nextai_mlp_chunks: 4 MLPs run in 2 chunks of intermediate features" in log
    assert kept == pytest.approx(plain_losses, rel=1e-4), (plain_losses, kept)


@pytest.mark.slow
def test_eager_refused_under_a_cap_before_the_model_loads(tiny_nf4, counting_rows, tmp_path, run_axolotl):
    # the tiny model's weights are 1.3 MiB; a 2 MB cap leaves no room for its 1.5 MiB of eager scores a layer
    cfg = tiny_cpu_config(
        tiny_nf4,
        tmp_path,
        datasets=counting_rows,
        attn_implementation="eager",
        nextai_gpu_memory_cap_gb=0.002,
    )
    result = run_axolotl(cfg, tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "attn_implementation: eager at 256 tokens per micro-step keeps 4 heads x 256 x 256" in log
    assert "allowed by nextai_gpu_memory_cap_gb: 0.002" in log
    assert "axolotl-nextai: plugin registered" not in log  # refused in the register hook, before any load
