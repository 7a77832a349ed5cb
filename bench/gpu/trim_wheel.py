"""Rewrite a wheel without what the GPU machine never loads, in place, so that a device call's tree stays
under 64 MiB.

    python3 bench/gpu/trim_wheel.py .whl/bitsandbytes-*.whl --cuda 130  # other builds' libraries
    python3 bench/gpu/trim_wheel.py .whl/unsloth/unsloth-*.whl --drop studio unsloth_cli  # top-level folders

bitsandbytes picks `libbitsandbytes_cuda<torch's CUDA version>.so` (or the CPU one) at import; the others
(CUDA 11.8-13.2, ROCm, XPU) are 37 of its 41 MiB. Unsloth's wheel is 27.3 MiB, 25.5 of them its web app
(studio/) and CLI, which training never imports. RECORD and entry_points.txt lose what was dropped, so pip
installs the trimmed wheel as it would the original; the new wheel replaces the old one only once it is
complete. Trimming a trimmed wheel again changes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

NATIVE = re.compile(r"bitsandbytes/libbitsandbytes_\w+\.so$")


def other_native_libraries(names: list[str], wheel: Path, cuda: str) -> set[str]:
    """bitsandbytes' native libraries other than the CPU one and `libbitsandbytes_cuda<cuda>.so`."""
    keep = {f"bitsandbytes/libbitsandbytes_cuda{cuda}.so", "bitsandbytes/libbitsandbytes_cpu.so"}
    missing = keep - set(names)
    if missing:
        raise SystemExit(f"{wheel}: has no {', '.join(sorted(missing))}; pass the CUDA version it ships")
    return {name for name in names if NATIVE.match(name) and name not in keep}


def under_folders(names: list[str], folders: tuple[str, ...]) -> set[str]:
    return {name for name in names if name.split("/", 1)[0] in folders}


def kept_entry_points(text: str, names: set[str]) -> str:
    """entry_points.txt without the entries whose module is no longer in the wheel (`names`: what stays)."""

    def present(line: str) -> bool:
        module = line.split("=", 1)[1].split(":")[0].strip().replace(".", "/")
        return f"{module}.py" in names or f"{module}/__init__.py" in names

    return "".join(line + "\n" for line in text.splitlines() if "=" not in line or present(line))


def trim(wheel: Path, cuda: str | None = None, folders: tuple[str, ...] = ()) -> list[str]:
    """Rewrite `wheel` without the other CUDA builds' libraries (`cuda`) and the top-level `folders`; returns
    what was dropped (nothing, and the wheel untouched, when it was trimmed before)."""
    with zipfile.ZipFile(wheel) as src:
        names = src.namelist()
        dropped = under_folders(names, folders)
        if cuda:
            dropped |= other_native_libraries(names, wheel, cuda)
        if not dropped:
            return []
        kept = set(names) - dropped
        partial = wheel.with_name(wheel.name + ".partial")  # opened as any new file: follows the umask
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename in dropped:
                    continue
                data = src.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = b"".join(
                        line
                        for line in data.splitlines(keepends=True)
                        if line.split(b",", 1)[0].decode() not in dropped
                    )
                elif info.filename.endswith(".dist-info/entry_points.txt"):
                    data = kept_entry_points(data.decode(), kept).encode()
                dst.writestr(info, data)
    partial.replace(wheel)
    return sorted(dropped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path)
    parser.add_argument(
        "--cuda", help="bitsandbytes: keep the CPU library and this CUDA build's (torch's, e.g. 130)"
    )
    parser.add_argument(
        "--drop", nargs="+", default=[], metavar="FOLDER", help="top-level folders to leave out"
    )
    args = parser.parse_args(argv)
    if not args.cuda and not args.drop:
        parser.error("give --cuda, --drop or both")
    for wheel in args.wheels:
        before = wheel.stat().st_size
        dropped = trim(wheel, args.cuda, tuple(args.drop))
        print(
            f"{wheel}: {before / 2**20:.1f} -> {wheel.stat().st_size / 2**20:.1f} MiB, "
            f"{len(dropped)} files dropped"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
