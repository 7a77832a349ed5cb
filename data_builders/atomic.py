"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

`write_set` extends that to the files of one command's output (a build's data and its manifest): every file is
written to a temporary beside it first, and only once all are written are they renamed into place, so a failed
write leaves the earlier set untouched. `staging_dir` + `replace_dir` (or `atomic_folder`, both in one block) do
the same for a folder (a model). New files and folders get the mode the umask gives, as `open()` would
(mkstemp alone makes them 0600).
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


def unwritable(path: str | os.PathLike) -> str | None:
    """Why `path`, a file or folder to create or replace, cannot be written, or None: the nearest existing folder
    above it must be a folder we can create a file in (tried, as permission bits do not bind root)."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as err:
        return f"cannot write in {folder} ({err.strerror})"


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
def staging_dir(out: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `out` to write a set of files into; `replace_dir` moves it into place, and
    whatever is left of it when the block ends (an error, a Ctrl-C) is removed, so `out` is never half written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, out: Path) -> None:
    """Rename the staged folder `tmp` to `out`; an existing `out` is moved aside first and deleted after."""
    old = None
    if out.exists() and not is_empty_dir(out):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.replace(out, old / out.name)
    os.replace(tmp, out)  # rename(2) replaces an empty folder
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield an empty folder beside `out` that replaces `out` whole when the block ends without error (on error
    `out` is kept). Entries get the modes the umask asks for: safetensors writes 0600."""
    with staging_dir(out) as staged:
        yield staged
        for path in staged.rglob("*"):
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask())
        replace_dir(staged, Path(out))


def same_files(a: Path, b: Path) -> bool:
    """Both folders hold the same file names with the same bytes."""
    if not a.is_dir() or not b.is_dir():
        return False
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if names != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in names)
