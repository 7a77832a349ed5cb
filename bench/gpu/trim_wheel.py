"""Drop the native libraries of a bitsandbytes wheel that the GPU machine never loads, in place.

    python bench/gpu/trim_wheel.py .whl/bitsandbytes-*.whl --cuda 130

bitsandbytes picks `libbitsandbytes_cuda<torch's CUDA version>.so` (or the CPU one) at import; the others (CUDA
11.8-13.2, ROCm, XPU) are 37 of its 41 MiB, and a device call carries at most 64 MiB. RECORD loses their lines,
so pip installs the trimmed wheel as it would the original.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

NATIVE = re.compile(r"bitsandbytes/libbitsandbytes_\w+\.so$")


def trim(wheel: Path, cuda: str) -> list[str]:
    """Rewrite `wheel` keeping only the CPU library and `libbitsandbytes_cuda<cuda>.so`; returns what was dropped."""
    keep = {f"bitsandbytes/libbitsandbytes_cuda{cuda}.so", "bitsandbytes/libbitsandbytes_cpu.so"}
    partial = wheel.with_name(wheel.name + ".partial")
    with zipfile.ZipFile(wheel) as src:
        missing = keep - set(src.namelist())
        if missing:
            raise SystemExit(f"{wheel}: has no {', '.join(sorted(missing))}; pass the CUDA version it ships")
        dropped = [name for name in src.namelist() if NATIVE.match(name) and name not in keep]
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename in dropped:
                    continue
                data = src.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if line.split(b",", 1)[0].decode() not in dropped)
                dst.writestr(info, data)
    partial.replace(wheel)
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheels", nargs="+", type=Path)
    parser.add_argument("--cuda", default="130", help="the CUDA version of the GPU machine's torch, as bnb names it")
    args = parser.parse_args(argv)
    for wheel in args.wheels:
        dropped = trim(wheel, args.cuda)
        print(f"{wheel}: kept the CPU and CUDA {args.cuda} libraries, dropped {len(dropped)} others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
