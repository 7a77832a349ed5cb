"""A folder written as one set: built beside its destination, then renamed over it whole.

A reader (or a crashed run) never sees half a model or half a set of task files: the folder holds the old set
or the whole new one. Entries get the modes the user's umask asks for (`mkdtemp` makes 0700, safetensors 0600).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def follow_umask(folder: Path) -> None:
    """`folder` and the files in it get 0777 / 0666 less the umask, as a plain mkdir / open would give."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; when the block ends without error it replaces `out`
    (an old `out` is moved aside, then removed). On error the temporary folder is removed and `out` is kept."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield work
        follow_umask(work)
        old = out.with_name(f".{out.name}.old-{os.getpid()}") if out.exists() else None
        if old is not None:
            out.rename(old)
        work.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
