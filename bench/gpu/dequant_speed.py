"""NF4 dequantization on the GPU: bitsandbytes' kernel against nextai_nf4_dequant_kernel's Triton one, per
Llama-2-70B weight shape: the same bf16 values (checked bit for bit), median time and bytes moved per second.

    python3 bench/gpu/dequant_speed.py          # on a CUDA machine, a few seconds

Bytes moved: the packed codes (half a byte a weight), the fp32 scales (4 bytes per 64 weights) and the bf16
output (2 bytes a weight), each once; the double-quantized scales' own dequantization is bitsandbytes' in both
columns.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SHAPES = {
    "gate_proj, up_proj": (28672, 8192),
    "down_proj": (8192, 28672),
    "q_proj, o_proj": (8192, 8192),
    "k_proj, v_proj": (1024, 8192),
}


def main() -> None:
    import bitsandbytes.functional as F
    from triton.testing import do_bench

    from axolotl_nextai.levers.nf4_dequant import KEY, Nf4DequantKernel

    lever = Nf4DequantKernel()

    print(f"gpu: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(
        "| weight | shape | bitsandbytes ms | Triton ms | bitsandbytes GB/s | Triton GB/s | Triton / "
        "bitsandbytes | same values |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        packed, state = F.quantize_4bit(
            torch.randn(shape, dtype=torch.bfloat16, device="cuda"),
            blocksize=64,
            quant_type="nf4",
            compress_statistics=True,
        )
        moved = packed.numel() + 4 * packed.numel() * 2 / 64 + 2 * 2 * packed.numel()
        reference = F.dequantize_4bit(packed, state)
        theirs = do_bench(
            functools.partial(F.dequantize_4bit, packed, state), warmup=50, rep=300, return_mode="median"
        )
        lever.install({KEY: "triton"})
        try:
            same = torch.equal(F.dequantize_4bit(packed, state), reference)
            ours = do_bench(
                functools.partial(F.dequantize_4bit, packed, state), warmup=50, rep=300, return_mode="median"
            )
        finally:
            lever.uninstall()
        print(
            f"| {name} | {shape[0]} x {shape[1]} | {theirs:.3f} | {ours:.3f} | {moved / theirs / 1e6:,.0f} "
            f"| {moved / ours / 1e6:,.0f} | {theirs / ours:.2f}x | {'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
