"""The memory levers through the real `accelerate launch -m axolotl.cli.train` on a pre-quantized NF4 checkpoint:
chunked dequantization, the tiled MLP and CPU embeddings train the same losses as without them (LoRA dropout
off, so that both runs compute the same function), and so do kept matmuls (`nextai_saved_matmuls`, a speed
lever: this is where its hooks meet Axolotl's loader and the Trainer) with the MLP chunked over its features
(`nextai_mlp_chunks`); eager attention is refused before loading when a cap leaves no room for its scores."""

import json

import pytest
from axolotl_launch import launch_train, tiny_cpu_config, write_jsonl

from axolotl_nextai.models.synth import PRESETS, write_synthetic_llama

LEVERS = {"nextai_dequant_chunk_mib": 0.02, "nextai_tiled_mlp_shards": 3, "nextai_embeddings_on_cpu": True,
          "nextai_expandable_segments": True, "nextai_nf4_dequant_kernel": "triton"}
# 0.02 MiB: the tiny MLP weights (64 KiB in bf16) in 4 chunks; the Triton dequantization serves CUDA tensors only
# (tests/axolotl_nextai/levers/test_nf4_dequant.py): here its patch is installed and bitsandbytes' path trains


@pytest.fixture(scope="module")
def tiny_nf4(tmp_path_factory):
    return write_synthetic_llama(PRESETS["tiny"], tmp_path_factory.mktemp("nf4") / "model", seed=5, device="cpu")


def counting_rows(workdir) -> list[dict]:
    data = write_jsonl(workdir / "rows.jsonl", [
        {"instruction": f"Count to {i}.", "input": "", "output": " ".join(str(k) for k in range(1, 3 * i))}
        for i in range(1, 17)])
    return [{"path": str(data), "type": "axolotl_nextai.alpaca"}]


def losses(tiny_nf4, workdir, run_axolotl, **overrides):
    # plain SGD: an update linear in the gradient, so rounding-level differences stay rounding-level (Adam's first
    # steps move each weight by ~lr whatever its gradient's size, and 8-bit states snap to bins)
    cfg = tiny_cpu_config(tiny_nf4, workdir, datasets=counting_rows(workdir), max_steps=4, lora_dropout=0.0,
                          learning_rate=0.5, optimizer="sgd", **overrides)
    result = run_axolotl(cfg, workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((workdir / "out" / "nextai_report.json").read_text())
    return [row["loss"] for row in report["losses"]], result.stdout + result.stderr


@pytest.fixture(scope="module")
def plain_losses(tiny_nf4, tmp_path_factory):
    return losses(tiny_nf4, tmp_path_factory.mktemp("plain"), launch_train)[0]


@pytest.mark.slow
def test_levers_train_the_same_losses(tiny_nf4, plain_losses, tmp_path, run_axolotl):
    levered, log = losses(tiny_nf4, tmp_path, run_axolotl, **LEVERS)
    assert "4-bit weights larger than 0.02 MiB are dequantized 0.02 MiB at a time" in log
    assert "nextai_tiled_mlp_shards: 4 MLPs run in 3 shards" in log
    assert "nextai_embeddings_on_cpu: input embeddings" in log
    assert "nextai_nf4_dequant_kernel: triton: bitsandbytes' NF4 weights dequantized on CUDA by a Triton kernel" in log
    assert len(plain_losses) == len(levered) == 4
    assert levered == pytest.approx(plain_losses, rel=1e-4), (plain_losses, levered)


@pytest.mark.slow
def test_kept_matmuls_and_the_chunked_mlp_train_the_same_losses(tiny_nf4, plain_losses, tmp_path, run_axolotl):
    """Attention's matmuls kept from the forward, the MLP in chunks of its features (with down_proj's adapter,
    which the plugin must hand it after PEFT made it: without it the losses would part)."""
    kept, log = losses(tiny_nf4, tmp_path, run_axolotl, nextai_saved_matmuls=["q_proj", "k_proj"], nextai_mlp_chunks=2)
    assert "nextai_saved_matmuls: not recomputed in 4 layers: k_proj, q_proj kept from the forward" in log
    # the Trainer's checkpointed recompute, through Axolotl's CLI, reached the stash
    assert "nextai_saved_matmuls: the first recomputed layer takes 2 kept outputs of 2 targeted" in log
    assert "nextai_mlp_chunks: 4 MLPs run in 2 chunks of intermediate features" in log
    assert kept == pytest.approx(plain_losses, rel=1e-4), (plain_losses, kept)


@pytest.mark.slow
def test_eager_refused_under_a_cap_before_the_model_loads(tiny_nf4, tmp_path, run_axolotl):
    # the tiny model's weights are 1.3 MiB; a 2 MB cap leaves no room for its 1.5 MiB of eager scores a layer
    cfg = tiny_cpu_config(tiny_nf4, tmp_path, datasets=counting_rows(tmp_path), attn_implementation="eager",
                          nextai_gpu_memory_cap_gb=0.002)
    result = run_axolotl(cfg, tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "attn_implementation: eager at 256 tokens per micro-step keeps 4 heads x 256 x 256" in log
    assert "allowed by nextai_gpu_memory_cap_gb: 0.002" in log
    assert "axolotl-nextai: plugin registered" not in log  # refused in the register hook, before any load
