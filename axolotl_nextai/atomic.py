"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

`write_set` extends that to the files of one command's output (a build's data and its manifest): every file is
written to a temporary beside it first, and only once all are written are they renamed into place, so a failed
write leaves the earlier set untouched. `atomic_dir` does the same for a folder (a model checkpoint).
New files and folders get the mode the umask gives, as `open()` would (mkstemp alone makes them 0600).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def umask() -> int:
    """The process umask, read without changing it where Linux exposes it (changing it races other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> tuple[int, Path]:
    """An open temporary file beside `path`, with the mode a new `path` would get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~umask())
    return fd, Path(tmp)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error, remove the temporary."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_set(files: Mapping[Path, str | bytes], stale: Iterable[Path] = ()) -> None:
    """Write every text (UTF-8) or bytes of `files` to its path as one set, then delete the `stale` files of an
    earlier set.

    All are staged as temporaries first; a failure there (disk full, a folder in the way) removes them and
    changes no target.
    """
    for path in files:
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a directory")
    staged: dict[Path, Path] = {}
    try:
        for path, content in files.items():
            fd, staged[Path(path)] = _temporary(Path(path))
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    for path, tmp in staged.items():
        os.replace(tmp, path)
    for path in stale:
        Path(path).unlink(missing_ok=True)


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


@contextmanager
def atomic_dir(out: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside `out` to write into; it becomes `out` when the block succeeds and is removed
    when it fails, so `out` is never half written. An existing non-empty `out` is replaced only if `replace`."""
    out = Path(out)
    if out.exists() and not is_empty_dir(out) and not replace:
        raise FileExistsError(f"{out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    os.chmod(tmp, 0o777 & ~umask())
    try:
        yield tmp
        old = None
        if out.exists() and not is_empty_dir(out):
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old / out.name)
        os.replace(tmp, out)  # rename(2) replaces an empty folder
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
