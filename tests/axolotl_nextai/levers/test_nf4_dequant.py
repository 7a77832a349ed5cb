"""nextai_nf4_dequant_kernel: the Triton kernel gives bitsandbytes' own values bit for bit (on the CPU through
Triton's interpreter, against bitsandbytes' reference implementation; on CUDA, where the GPU machine runs this
file first, against its CUDA kernel, inside its 4-bit matmul too); off the GPU and for `bitsandbytes`,
bitsandbytes' own path (installing and undoing the patch is test_contract.py's)."""

import pytest
import torch

from axolotl_nextai.levers.nf4_dequant import KEY, Nf4DequantKernel, dequantize_nf4, kernel

LEVER = Nf4DequantKernel()


@pytest.fixture
def interpreted(monkeypatch):
    """Triton kernels run on the CPU (its interpreter): the kernel compiled anew under it, and afterwards."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernel.cache_clear()
    yield
    kernel.cache_clear()


def quantized(shape, device="cpu", seed=0):
    import bitsandbytes.functional as F

    torch.manual_seed(seed)
    weight = torch.randn(shape, dtype=torch.bfloat16, device=device) * 3
    return F.quantize_4bit(weight, blocksize=64, quant_type="nf4", compress_statistics=True)


def bitsandbytes_reference(packed, state, dtype):
    """bitsandbytes' own NF4 dequantization in plain torch (fp32 product, rounded once: its CUDA kernel's)."""
    import bitsandbytes.functional as F
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute

    scales = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
    return _dequantize_4bit_compute(
        packed.reshape(-1), scales.float(), state.code.float(), state.blocksize, state.shape, dtype
    )


# last: several programs, a ragged end
@pytest.mark.parametrize("shape", [(64, 128), (40, 200), (3, 2 * 4096 + 64)])
def test_the_kernel_gives_bitsandbytes_values_bit_for_bit(interpreted, shape):
    import bitsandbytes.functional as F

    packed, state = quantized(shape)
    scales = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
    out = dequantize_nf4(packed, state.code.float(), scales.float(), state.blocksize, state.shape)
    reference = bitsandbytes_reference(packed, state, torch.bfloat16)
    assert out.shape == reference.shape == shape and out.dtype == torch.bfloat16
    assert torch.equal(out, reference)


def test_off_the_gpu_and_for_bitsandbytes_its_own_path():
    import bitsandbytes.functional as F

    original = F.dequantize_4bit
    packed, state = quantized((64, 128))
    try:
        assert LEVER.install({KEY: "bitsandbytes"}) == f"{KEY}: bitsandbytes: bitsandbytes' own kernel"
        assert F.dequantize_4bit is original
        assert LEVER.install({KEY: "triton"}).startswith(f"{KEY}: triton")
        # a CPU tensor: bitsandbytes'
        assert torch.equal(F.dequantize_4bit(packed, state), original(packed, state))
    finally:
        LEVER.uninstall()
    assert F.dequantize_4bit is original


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the kernel serves CUDA tensors")
def test_on_cuda_the_same_values_as_bitsandbytes_kernel_and_matmul():
    import bitsandbytes
    import bitsandbytes.functional as F

    packed, state = quantized((8192, 1024), device="cuda")
    reference = F.dequantize_4bit(packed, state)
    x = torch.randn(512, 1024, dtype=torch.bfloat16, device="cuda", requires_grad=True)
    y_reference = bitsandbytes.matmul_4bit(x, packed.t(), quant_state=state)
    y_reference.sum().backward()
    grad_reference, x.grad = x.grad, None
    try:
        LEVER.install({KEY: "triton"})
        assert torch.equal(F.dequantize_4bit(packed, state), reference)
        y = bitsandbytes.matmul_4bit(x, packed.t(), quant_state=state)
        y.sum().backward()
    finally:
        LEVER.uninstall()
    assert torch.equal(y, y_reference) and torch.equal(x.grad, grad_reference)
