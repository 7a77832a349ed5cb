"""NF4 weights dequantized by a Triton kernel instead of bitsandbytes' CUDA one (`nextai_nf4_dequant_kernel`).

Every 4-bit matmul of a QLoRA step first dequantizes its weight: Llama-2-70B's 68.5 G weights two to three
times a micro-step, reading 0.5 byte and writing 2 bytes a weight. bitsandbytes 0.50's kernel
(`kDequantizeBlockwise`, 64 threads a block, 8 bytes a thread) moves those bytes well below the card's
bandwidth (measured on an H200: bench/results/gpu70b-fast-2026-12-01.md), and an H100's memory is slower
still. This kernel reads 16 bytes of codes a thread and writes the two values of each byte side by side, so
the copy runs at the card's streaming rate.

The values are bitsandbytes' own, bit for bit: each is the NF4 code times its block's fp32 scale, the product
rounded once to bf16 (to nearest even), as `kDequantizeBlockwise` does; double-quantized scales are first
dequantized by bitsandbytes itself. Only `bitsandbytes.functional.dequantize_4bit` on CUDA with NF4 in bf16 is
routed here (what its 4-bit matmul, and `nextai_dequant_chunk_mib`'s chunks, call); anything else keeps
bitsandbytes' path. Axolotl's LoRA kernels call bitsandbytes' library directly and keep its kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch

KEY = "nextai_nf4_dequant_kernel"
BYTES_PER_PROGRAM = 2048  # packed bytes a Triton program dequantizes: 4,096 values


@functools.cache
def kernel():
    """The Triton kernel, compiled on first use (importing this module needs no Triton)."""
    import triton
    import triton.language as tl

    @triton.jit
    def dequantize_nf4(
        packed_ptr, code_ptr, absmax_ptr, out_ptr, n_bytes, BYTES_PER_BLOCK: tl.constexpr, BLOCK: tl.constexpr
    ):
        start = tl.program_id(0).to(tl.int64) * BLOCK
        offsets = start + tl.arange(0, BLOCK)
        inside = offsets < n_bytes
        codes = tl.load(packed_ptr + offsets, mask=inside, other=0).to(tl.int32)
        scale = tl.load(absmax_ptr + offsets // BYTES_PER_BLOCK, mask=inside, other=0.0)
        high = tl.load(code_ptr + (codes >> 4)) * scale  # the first value of a byte is its high nibble
        low = tl.load(code_ptr + (codes & 15)) * scale
        # the two values of each byte side by side (join and reshape, not the interleave helper: a plain jit
        # function, which Triton's interpreter cannot call once Triton was imported without it), then fp32 ->
        # bf16 rounded to nearest even in integer arithmetic (the same bits on a GPU and in the interpreter,
        # whose own conversion truncates)
        bits = tl.reshape(tl.join(high, low), [2 * BLOCK]).to(tl.uint32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        places = 2 * start + tl.arange(0, 2 * BLOCK)
        tl.store(out_ptr + places, rounded.to(tl.int16), mask=places < 2 * n_bytes)

    return dequantize_nf4


def dequantize_nf4(
    packed: torch.Tensor, code: torch.Tensor, absmax: torch.Tensor, blocksize: int, shape
) -> torch.Tensor:
    """The bf16 weight of `shape` from its packed 4-bit codes (two a byte, high nibble first, row-major), the
    16-value code book (fp32) and one fp32 scale per `blocksize` values."""
    import triton

    n_bytes = packed.numel()
    out = torch.empty(shape, dtype=torch.bfloat16, device=packed.device)
    grid = (triton.cdiv(n_bytes, BYTES_PER_PROGRAM),)
    kernel()[grid](
        packed.view(torch.uint8).reshape(-1),
        code,
        absmax.reshape(-1),
        out.view(torch.int16),
        n_bytes,
        BYTES_PER_BLOCK=blocksize // 2,
        BLOCK=BYTES_PER_PROGRAM,
    )
    return out


def routed(A: torch.Tensor, quant_state, out) -> bool:
    """Whether bitsandbytes' dequantize_4bit call goes to the Triton kernel: an NF4 weight on CUDA with its
    state, computed in bf16 (QLoRA's compute dtype), a whole number of bytes, no `out` buffer given."""
    return (
        quant_state is not None
        and out is None
        and A.is_cuda
        and quant_state.quant_type == "nf4"
        and quant_state.dtype == torch.bfloat16
        and 2 * A.numel() == quant_state.shape.numel()
    )


class Nf4DequantKernel:
    """`nextai_nf4_dequant_kernel`: `triton` routes bitsandbytes' NF4 dequantization on CUDA through the
    Triton kernel (`bitsandbytes`: its own, nothing patched)."""

    key = KEY
    hook = "pre_model_load"
    distributed = False

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        return []

    def install(self, cfg: Mapping, target: None = None) -> str:
        import bitsandbytes.functional as F

        self.uninstall()
        if cfg[KEY] != "triton":
            return f"{KEY}: {cfg[KEY]}: bitsandbytes' own kernel"
        original = F.dequantize_4bit

        @functools.wraps(original)
        def dequantize_4bit(A, quant_state=None, absmax=None, out=None, blocksize=None, quant_type="fp4"):
            if not routed(A, quant_state, out):
                return original(A, quant_state, absmax, out, blocksize, quant_type)
            scales = quant_state.absmax
            if quant_state.nested:  # as bitsandbytes does it
                scales = F.dequantize_blockwise(quant_state.absmax, quant_state.state2)
                scales += quant_state.offset
            code = quant_state.code.to(device=A.device, dtype=torch.float32)
            result = dequantize_nf4(A, code, scales.float(), quant_state.blocksize, quant_state.shape)
            return result.t() if A.shape[0] == 1 else result  # bitsandbytes' transposed-input convention

        patch(F, "dequantize_4bit", dequantize_4bit, KEY)
        return (
            f"{KEY}: triton: bitsandbytes' NF4 weights dequantized on CUDA by a Triton kernel "
            "(the same values)"
        )

    def uninstall(self, target: None = None) -> None:
        import bitsandbytes.functional as F

        unpatch(F, KEY)
