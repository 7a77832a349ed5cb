"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

`write_set` extends that to the files of one command's output (a build's data and its manifest): every file is
written to a temporary beside it first, and only once all are written are they renamed into place, each old
file kept aside until the last rename has succeeded, so a failure at any point leaves the earlier set as it
was: a set is replaced all or nothing. `staging_dir` + `replace_dir` (or `atomic_folder`, both in one block)
do the same for a folder (a model). New files and folders get the mode the umask gives, as `open()` would
(mkstemp alone makes them 0600). A target that is a symlink is written through: the file it points to gets the
new content, the link stays (replacing the link would leave readers of the target on the old rows).

Temporaries are named `.<name>.<pid>.<random>.<tmp|partial|old>`: an error, Ctrl-C or SIGTERM (see
`boundary.py`) removes them on the way out, and one that a SIGKILL left behind is removed by the next write
beside it, once its process is gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def umask() -> int:
    """The process umask, read without changing it where Linux exposes it (changing it races other
    threads)."""
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
    """Why `path`, a file or folder to create or replace, cannot be written, or None: the nearest existing
    folder above it must be a folder we can create a file in (tried, as permission bits do not bind root)."""
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


TEMPORARY_SUFFIXES = (".tmp", ".partial", ".old")


def _prefix(path: Path) -> str:
    """What this process's temporaries beside `path` are named with."""
    return f".{path.name}.{os.getpid()}."


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def sweep_stale(path: Path) -> None:
    """Remove the temporaries beside `path` whose process no longer exists (a SIGKILL leaves them)."""
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        parts = name[len(prefix) :].split(".")  # pid, random part, suffix: `.v5.2024.<pid>...` is v5.2024's
        if not (name.startswith(prefix) and name.endswith(TEMPORARY_SUFFIXES) and len(parts) == 3):
            continue
        if parts[0].isdigit() and _process_gone(int(parts[0])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def write_target(path: str | os.PathLike) -> Path:
    """Where writing `path` puts the bytes: the file a symlink points to (followed to the end), else
    `path`."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _temporary(path: Path) -> tuple[int, Path]:
    """An open temporary file beside `path`, with the mode a new `path` would get."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
    os.fchmod(fd, 0o666 & ~umask())
    return fd, Path(tmp)


def _set_aside(path: Path) -> Path:
    """A second name for the file at `path` (a hard link, else a copy) to restore it from."""
    aside = path.with_name(f"{_prefix(path)}{secrets.token_hex(4)}.old")
    try:
        os.link(path, aside, follow_symlinks=False)
    except OSError:
        shutil.copy2(path, aside, follow_symlinks=False)
    return aside


def replace_all(staged: Mapping[Path, Path | None]) -> None:
    """Rename each staged temporary over its target (None: delete the target), all or nothing: the old files
    are set aside first, and a failure (or a signal) part way puts back every one already replaced."""
    done: list[tuple[Path, Path | None]] = []
    try:
        for target, tmp in staged.items():
            present = target.exists() or target.is_symlink()
            if tmp is None and not present:
                continue
            aside = _set_aside(target) if present else None
            try:
                if tmp is None:
                    target.unlink()
                else:
                    os.replace(tmp, target)
            except BaseException:
                if aside is not None:
                    aside.unlink(missing_ok=True)
                raise
            done.append((target, aside))
    except BaseException:
        for target, aside in reversed(done):
            if aside is not None:
                os.replace(aside, target)
            else:
                target.unlink(missing_ok=True)
        for tmp in staged.values():
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        raise
    for _, aside in done:
        if aside is not None:
            aside.unlink(missing_ok=True)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error, remove the temporary."""
    path = write_target(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(
            fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else ""
        ) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_set(files: Mapping[Path, str | bytes], stale: Iterable[Path] = ()) -> None:
    """Write every text (UTF-8) or bytes of `files` to its path as one set, and delete the `stale` files of an
    earlier set, all or nothing (`replace_all`).

    All are staged as temporaries first; a failure there (disk full, a folder in the way) removes them and
    changes no target.
    """
    targets = {write_target(path): content for path, content in files.items()}
    for path in targets:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
    staged: dict[Path, Path | None] = {}
    try:
        for path, content in targets.items():
            fd, staged[path] = _temporary(path)
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    replace_all({**staged, **{Path(path): None for path in stale if Path(path) not in staged}})


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def out_folder_problem(out: Path, overwrite: bool) -> str | None:
    """Why a command may not write the folder `out` ("is a file", "is not empty (pass --overwrite ...)", or
    why its place cannot be written), or None: what `nextai-tiny-model`, `nextai-synth` and
    `nextai-real-model` check before any work, so that no command replaces a folder of someone's files
    unasked."""
    if out.exists() and not out.is_dir():
        return "is a file"
    if out.exists() and not overwrite and not is_empty_dir(out):
        return "is not empty (pass --overwrite to replace it)"
    return unwritable(out)


@contextmanager
def staging_dir(out: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `out` to write a set of files into; `replace_dir` moves it into place, and
    whatever is left of it when the block ends (an error, a Ctrl-C) is removed, so `out` is never half
    written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=_prefix(out), suffix=".partial"))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, out: Path) -> None:
    """Rename the staged folder `tmp` to `out`; an existing `out` is moved aside first and deleted after."""
    old = None
    if out.exists() and not is_empty_dir(out):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=_prefix(out), suffix=".old"))
        os.replace(out, old / out.name)
    os.replace(tmp, out)  # rename(2) replaces an empty folder
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield an empty folder beside `out` that replaces `out` whole when the block ends without error (on
    error `out` is kept). Entries get the modes the umask asks for: safetensors writes 0600."""
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
