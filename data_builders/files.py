"""Input files are regular files: what a path is when it is not one, said in one line, and reads that cannot
block.

`Path.is_file()` is False for a FIFO, a device, a folder and a symlink loop alike, so every one of them used
to be reported as "missing", and reading a FIFO blocked forever. `file_problem` says what the path is instead;
`read_input` opens without blocking, checks the opened file itself (no window between the check and the read)
and refuses one larger than the reader's bound.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import click

from data_builders.errors import DataError, RowError

MISSING = "does not exist"
CONFIG_BYTES = 16 << 20  # a mixture, recipe, model config or run report: real ones are a few KiB

KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_problem(mode: int) -> str | None:
    """ "is a folder", "is a FIFO (named pipe)", ... for a mode that is not a regular file's; None for one."""
    if stat.S_ISREG(mode):
        return None
    return "is " + next((name for test, name in KINDS if test(mode)), "not a regular file")


def os_problem(err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return MISSING
    if err.errno == errno.ELOOP:
        return "is a symlink loop"
    if err.errno == errno.ENOTDIR:
        return "does not exist (a file stands where a folder of its path should be)"
    return f"cannot be read ({err.strerror})"


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as an input file ("does not exist", "is a FIFO (named pipe)", "is a symlink
    loop", ...), or None for a regular file (or a symlink to one)."""
    try:
        return kind_problem(os.stat(path).st_mode)
    except OSError as err:
        return os_problem(err)


def require_file(path: str | os.PathLike, what: str = "") -> Path:
    """`path` if it is a regular file, else a DataError "`what` `path`: is a FIFO (named pipe)"."""
    problem = file_problem(path)
    if problem:
        raise DataError(f"{what}{path}: {problem}")
    return Path(path)


def read_input(path: str | os.PathLike, limit: int | None = None, what: str = "") -> bytes:
    """The bytes of the regular file `path`; a DataError naming it when it is anything else or holds more than
    `limit` bytes. Opened non-blocking, so a FIFO is refused instead of waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as err:
        raise DataError(f"{what}{path}: {os_problem(err)}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        problem = kind_problem(info.st_mode)
        if problem is None and limit is not None and info.st_size > limit:
            problem = f"holds {info.st_size:,} bytes, more than the {limit:,} such a file may hold"
        if problem:
            raise DataError(f"{what}{path}: {problem}")
        os.set_blocking(fd, True)
        return f.read()


def decode(data: bytes, where: str) -> str:
    """`data` as UTF-8 text, or a RowError naming `where`:line and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise RowError(f"{where}:{line}: not UTF-8 (byte 0x{data[err.start]:02x})") from None


def read_text(path: str | os.PathLike, what: str = "") -> str:
    """A hand-written file (mixture, recipe, config.json, report) as UTF-8 text: `read_input` bounded by
    `CONFIG_BYTES`, then `decode`."""
    return decode(read_input(path, CONFIG_BYTES, what), str(path))


class InputFile(click.ParamType):
    """A command-line argument naming a file to read: a regular file, or a usage error saying what it is."""

    name = "file"

    def convert(self, value, param, ctx) -> Path:
        problem = file_problem(value)
        if problem:
            self.fail(f"'{value}' {problem}.", param, ctx)
        return Path(value)
