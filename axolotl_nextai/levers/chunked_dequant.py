"""A 4-bit linear layer's forward and input gradient without its whole weight in bf16
(`nextai_dequant_chunk_mib`).

For every matmul in training, bitsandbytes dequantizes a `Linear4bit`'s whole weight: Llama-2-70B's MLP
weights (8,192 x 28,672) become 448 MiB of bf16 each time, the largest single allocation of a QLoRA step and
what put r 64 at cutoff 4,096 over a 40 GB card. NF4 data is stored row-major in blocks of `blocksize` values,
each with its own scale (absmax), so any run of whole blocks dequantizes on its own:

- forward, y = x W^T: W in chunks of rows (output features), y[:, rows] = x @ W[rows]^T;
- input gradient, dx = dy W: W in chunks of columns (input features), dx[:, cols] = dy @ W[:, cols].

Every output element is still one full-length dot product (nothing is summed across chunks), so the results
are bitsandbytes' own up to the matmul's rounding. With double quant the absmax values are themselves
quantized in blocks of 256: they are dequantized first, whole (1/64 of the weight's values, in fp32). The base
weight is frozen, so backward needs only the 4-bit weight itself: nothing else is saved.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from axolotl_nextai.checks.launch import Launch
from axolotl_nextai.levers.contract import patch, unpatch

MIB = 2**20


@dataclass(frozen=True)
class NF4Weight:
    """The pieces of one 4-bit weight (out_features x in_features) that a chunk needs."""

    packed: torch.Tensor  # (out, in / 2) uint8: two 4-bit codes a byte, row-major
    absmax: torch.Tensor  # (out, in / blocksize) fp32: one scale per block
    quant_state: object  # bitsandbytes' QuantState: code, blocksize, quant_type, dtype

    @classmethod
    def from_bnb(cls, weight: torch.Tensor, quant_state) -> NF4Weight:
        from bitsandbytes.functional import dequantize_blockwise

        out_features, in_features = quant_state.shape
        absmax = quant_state.absmax
        if quant_state.nested:
            absmax = dequantize_blockwise(absmax, quant_state.state2) + quant_state.offset
        blocks = in_features // quant_state.blocksize
        packed = weight.view(torch.uint8).view(out_features, in_features // 2)
        return cls(packed, absmax.float().view(out_features, blocks), quant_state)

    def _dequantize(self, packed: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
        from bitsandbytes.functional import QuantState, dequantize_4bit

        qs = self.quant_state
        shape = torch.Size((packed.shape[0], 2 * packed.shape[1]))
        state = QuantState(
            absmax=absmax.reshape(-1),
            shape=shape,
            code=qs.code,
            blocksize=qs.blocksize,
            quant_type=qs.quant_type,
            dtype=qs.dtype,
        )
        # a column (n, 1), bitsandbytes' own layout: a packed tensor with one row would read as transposed
        return dequantize_4bit(packed.reshape(-1, 1), state)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """W[start:stop] in the compute dtype: a contiguous range of the packed data."""
        return self._dequantize(self.packed[start:stop], self.absmax[start:stop])

    def columns(self, start: int, stop: int) -> torch.Tensor:
        """W[:, start:stop] in the compute dtype; `start` and `stop` are multiples of the blocksize."""
        block = self.quant_state.blocksize
        return self._dequantize(
            self.packed[:, start // 2 : stop // 2].contiguous(),
            self.absmax[:, start // block : stop // block].contiguous(),
        )


def rows_per_chunk(in_features: int, chunk_bytes: int, element_bytes: int = 2) -> int:
    """Whole rows of the dequantized weight that fit `chunk_bytes` (at least one)."""
    return max(1, chunk_bytes // (in_features * element_bytes))


def columns_per_chunk(out_features: int, blocksize: int, chunk_bytes: int, element_bytes: int = 2) -> int:
    """Columns of the dequantized weight that fit `chunk_bytes`, in whole blocks (at least one block)."""
    return max(1, chunk_bytes // (out_features * element_bytes * blocksize)) * blocksize


def chunkable(A: torch.Tensor, quant_state, chunk_bytes: int) -> bool:
    """Whether this matmul goes through the chunks: a non-empty input, a weight stored (out, in) with whole
    blocks per row, and a dequantized size above one chunk. Anything else keeps bitsandbytes' own path."""
    shape = getattr(quant_state, "shape", None)
    if (
        shape is None
        or len(shape) != 2
        or A.numel() == 0
        or getattr(quant_state, "packing_format_for_cpu", False)
    ):
        return False
    out_features, in_features = shape
    return (
        A.shape[-1] == in_features
        and in_features % quant_state.blocksize == 0
        and out_features * in_features * quant_state.dtype.itemsize > chunk_bytes
    )


class ChunkedMatmul4bit(torch.autograd.Function):
    """y = A W^T + bias with W a bitsandbytes 4-bit weight, dequantized a chunk at a time both ways."""

    @staticmethod
    def forward(ctx, A, weight, quant_state, bias, chunk_bytes):
        nf4 = NF4Weight.from_bnb(weight, quant_state)
        out_features, in_features = quant_state.shape
        x = A.reshape(-1, in_features)
        out = x.new_empty(x.shape[0], out_features)
        step = rows_per_chunk(in_features, chunk_bytes, quant_state.dtype.itemsize)
        for start in range(0, out_features, step):
            stop = min(out_features, start + step)
            weight_t = nf4.rows(start, stop).to(A.dtype).t()
            if bias is None:
                torch.mm(x, weight_t, out=out[:, start:stop])
            else:  # bias added inside the matmul, rounded once, as F.linear does
                torch.addmm(bias[start:stop], x, weight_t, out=out[:, start:stop])
        # Held on ctx, not saved through autograd, as bitsandbytes' MatMul4Bit does: checkpointing counts
        # saved tensors, and a recompute that replays a kept output (nextai_saved_matmuls) saves none for this
        # matmul.
        ctx.weight = weight
        ctx.quant_state, ctx.chunk_bytes, ctx.input_shape = quant_state, chunk_bytes, A.shape
        ctx.bias_dtype = None if bias is None else bias.dtype
        return out.view(*A.shape[:-1], out_features)

    @staticmethod
    def backward(ctx, grad_output):
        weight, quant_state = ctx.weight, ctx.quant_state
        out_features, in_features = quant_state.shape
        grad = grad_output.reshape(-1, out_features)
        grad_A = grad_bias = None
        if ctx.needs_input_grad[3]:
            grad_bias = grad.sum(0, dtype=ctx.bias_dtype)
        if ctx.needs_input_grad[0]:
            nf4 = NF4Weight.from_bnb(weight, quant_state)
            grad_A = grad.new_empty(grad.shape[0], in_features)
            step = columns_per_chunk(
                out_features, quant_state.blocksize, ctx.chunk_bytes, quant_state.dtype.itemsize
            )
            for start in range(0, in_features, step):
                stop = min(in_features, start + step)
                torch.mm(grad, nf4.columns(start, stop).to(grad.dtype), out=grad_A[:, start:stop])
            grad_A = grad_A.view(ctx.input_shape)
        return grad_A, None, None, grad_bias, None


class ChunkedDequant:
    """`nextai_dequant_chunk_mib`: bitsandbytes' 4-bit matmul (what `Linear4bit.forward` calls), process-wide,
    through the chunks for every weight larger than the chunk in its compute dtype; smaller weights keep
    bitsandbytes' path."""

    key = "nextai_dequant_chunk_mib"
    hook = "pre_model_load"
    # FSDP2, 2 CPU ranks: the losses of one process (tests/axolotl_nextai/run/test_multi_rank_cli.py)
    distributed = True

    def problems(self, cfg: Mapping, launch: Launch) -> list[str]:
        return []

    def install(self, cfg: Mapping, target: None = None) -> str:
        import bitsandbytes

        self.uninstall()
        chunk_mib = cfg[self.key]
        chunk_bytes = int(chunk_mib * MIB)
        original = bitsandbytes.matmul_4bit

        @functools.wraps(original)
        def matmul_4bit(A, B, quant_state, out=None, bias=None):
            if out is None and chunkable(A, quant_state, chunk_bytes):
                return ChunkedMatmul4bit.apply(A, B, quant_state, bias, chunk_bytes)
            return original(A, B, quant_state, out=out, bias=bias)

        patch(bitsandbytes, "matmul_4bit", matmul_4bit, self.key)
        return (
            f"{self.key}: 4-bit weights larger than {chunk_mib:g} MiB are dequantized "
            f"{chunk_mib:g} MiB at a time (forward by rows, input gradient by columns)"
        )

    def uninstall(self, target: None = None) -> None:
        import bitsandbytes

        unpatch(bitsandbytes, self.key)
