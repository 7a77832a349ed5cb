"""Rewrite a wheel without some of its top-level folders, so that the GPU call's tree stays under 64 MiB.

    python3 bench/gpu/trim_wheel.py WHEEL FOLDER...     # e.g. unsloth-*.whl studio unsloth_cli

The wheel's RECORD and entry points lose what was dropped (pip installs it as usual); the new wheel replaces the
old one only once it is complete. It prints the sizes before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from pathlib import Path


def dropped(name: str, folders: tuple[str, ...]) -> bool:
    return name.split("/", 1)[0] in folders


def kept_entry_points(text: str, folders: tuple[str, ...]) -> str:
    """entry_points.txt without the entries whose module is in a dropped folder."""
    lines = [line for line in text.splitlines()
             if "=" not in line or line.split("=", 1)[1].strip().split(".")[0].split(":")[0] not in folders]
    return "\n".join(lines) + "\n"


def trim(wheel: Path, folders: tuple[str, ...]) -> None:
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        missing = [folder for folder in folders if not any(name.startswith(folder + "/") for name in names)]
        if missing:
            raise SystemExit(f"{wheel}: no top-level folder {', '.join(missing)}")
        fd, tmp = tempfile.mkstemp(dir=wheel.parent, suffix=".whl")
        os.close(fd)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                if dropped(item.filename, folders):
                    continue
                data = source.read(item.filename)
                if item.filename.endswith(".dist-info/RECORD"):
                    data = "".join(line + "\n" for line in data.decode().splitlines()
                                   if not dropped(line, folders)).encode()
                elif item.filename.endswith(".dist-info/entry_points.txt"):
                    data = kept_entry_points(data.decode(), folders).encode()
                target.writestr(item, data)
    before = wheel.stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; a downloaded wheel follows the umask
    os.replace(tmp, wheel)
    print(f"{wheel.name}: {before / 2**20:.2f} MiB -> {wheel.stat().st_size / 2**20:.2f} MiB without {', '.join(folders)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    trim(args.wheel, tuple(args.folders))


if __name__ == "__main__":
    main()
