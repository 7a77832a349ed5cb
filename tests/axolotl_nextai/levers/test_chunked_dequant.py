"""nextai_dequant_chunk_mib: the chunked 4-bit matmul against bitsandbytes' own Linear4bit (its CPU backend),
forward, input gradient and LoRA's adapter gradients through peft, with no chunk larger than asked."""

import bitsandbytes
import bitsandbytes.functional
import pytest
import torch

from axolotl_nextai.levers.chunked_dequant import (
    MIB,
    ChunkedDequant,
    chunkable,
    columns_per_chunk,
    rows_per_chunk,
)

OUT, IN = 384, 256  # 6 x 4 blocks of 64 per row


def linear4bit(dtype: torch.dtype, bias: bool, seed: int = 0) -> bitsandbytes.nn.Linear4bit:
    """An NF4 + double-quant Linear4bit quantized on the CPU, as transformers loads the paper's model."""
    torch.manual_seed(seed)
    layer = bitsandbytes.nn.Linear4bit(
        IN, OUT, bias=bias, compute_dtype=dtype, compress_statistics=True, quant_type="nf4"
    )
    weight = (torch.randn(OUT, IN) * 0.02).to(dtype)
    layer.weight = bitsandbytes.nn.Params4bit(
        weight, requires_grad=False, quant_type="nf4", compress_statistics=True, module=layer
    )
    if bias:
        layer.bias = torch.nn.Parameter(torch.randn(OUT, dtype=dtype) * 0.1)
    return layer.to("cpu")


LEVER = ChunkedDequant()


def install(chunk_mib: float) -> str:
    return LEVER.install({LEVER.key: chunk_mib})


@pytest.fixture
def restore_bnb():
    """Whatever a test installs, bitsandbytes' own matmul comes back afterwards."""
    yield
    LEVER.uninstall()


@pytest.fixture
def dequantized_sizes(monkeypatch):
    """The element counts of every tensor bitsandbytes dequantizes (an observer: the real function runs)."""
    sizes, real = [], bitsandbytes.functional.dequantize_4bit

    def observed(*args, **kwargs):
        out = real(*args, **kwargs)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(bitsandbytes.functional, "dequantize_4bit", observed)
    return sizes


def forward_backward(layer, x, grad):
    x = x.detach().requires_grad_(True)
    y = layer(x)
    y.backward(grad)
    return y.detach(), x.grad


def test_chunk_sizes_are_whole_rows_and_whole_blocks():
    assert rows_per_chunk(28_672, 64 * MIB) == 1_170  # 64 MiB of bf16 rows of Llama-2-70B's down_proj
    assert rows_per_chunk(28_672, 1) == 1
    assert columns_per_chunk(8_192, 64, 64 * MIB) == 4_096  # 8,192 x 4,096 bf16 = 64 MiB
    assert columns_per_chunk(8_192, 64, 1) == 64


def test_only_large_weights_with_whole_blocks_per_row_are_chunked():
    state = linear4bit(torch.bfloat16, bias=False).weight.quant_state
    x = torch.ones(3, IN, dtype=torch.bfloat16)
    assert chunkable(x, state, chunk_bytes=OUT * IN)  # the weight is 2 bytes a value: twice a chunk
    assert not chunkable(x, state, chunk_bytes=2 * OUT * IN)  # fits one chunk: bitsandbytes' path
    assert not chunkable(x[:0], state, chunk_bytes=1)
    assert not chunkable(torch.ones(3, OUT), state, chunk_bytes=1)  # a [K, N] weight: bitsandbytes' path


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk_rows", [1, 100, 383])  # uneven last chunks included
def test_same_output_and_input_gradient_as_bitsandbytes(
    dtype, bias, chunk_rows, restore_bnb, dequantized_sizes
):
    layer = linear4bit(dtype, bias)
    x = torch.randn(2, 7, IN, dtype=dtype)
    grad = torch.randn(2, 7, OUT, dtype=dtype)
    expected = forward_backward(layer, x, grad)
    assert max(dequantized_sizes) == OUT * IN  # bitsandbytes dequantizes the whole weight
    dequantized_sizes.clear()

    chunk_bytes = chunk_rows * IN * dtype.itemsize
    install(chunk_bytes / MIB)
    y, dx = forward_backward(layer, x, grad)
    # one full-length dot product per output element either way: equal up to the matmul's own rounding
    torch.testing.assert_close(y, expected[0])
    torch.testing.assert_close(dx, expected[1])
    assert dequantized_sizes and max(dequantized_sizes) * dtype.itemsize <= max(
        chunk_bytes, OUT * 64 * dtype.itemsize
    )
    assert len(dequantized_sizes) > 2  # forward and backward each went through several chunks


def test_lora_gradients_through_peft_are_unchanged(restore_bnb):
    from peft import LoraConfig, get_peft_model

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down_proj = linear4bit(torch.float32, bias=False)

        def forward(self, x):
            return self.down_proj(x)

    def grads():
        torch.manual_seed(1)
        model = get_peft_model(
            Block(), LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["down_proj"])
        )
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero, which would hide a wrong gradient for A
                torch.nn.init.normal_(param, std=0.1)
        torch.manual_seed(2)
        x = torch.randn(3, 5, IN, requires_grad=True)
        model(x).pow(2).sum().backward()
        lora = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
        assert len(lora) == 2 and all(g.abs().sum() > 0 for g in lora.values())
        return x.grad, lora

    x_grad, lora = grads()
    install(50 * IN * 4 / MIB)
    chunked_x_grad, chunked_lora = grads()
    torch.testing.assert_close(chunked_x_grad, x_grad, rtol=1e-6, atol=1e-7)
    for name, grad in lora.items():
        torch.testing.assert_close(chunked_lora[name], grad, rtol=1e-6, atol=1e-7)


def test_a_second_install_replaces_the_first_and_uninstall_gives_bitsandbytes_back(restore_bnb):
    original = bitsandbytes.matmul_4bit
    install(64)
    assert "32 MiB at a time" in install(32)
    assert bitsandbytes.matmul_4bit.__wrapped__ is original
    LEVER.uninstall()
    assert bitsandbytes.matmul_4bit is original and not vars(bitsandbytes).get("_nextai_patches")
