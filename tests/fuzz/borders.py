"""What every fuzzer asserts at a command's border: it succeeds, or it fails with exit != 0 in one line and no
traceback, and not by the boundary's last resort (an error no check foresaw, data_builders/boundary.py);
either way no input changed and nothing was left in the output folder but what it writes."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from data_builders.boundary import DEBUG_ENV


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@contextmanager
def workdir():
    """A fresh folder per example (hypothesis runs many in one test)."""
    folder = Path(tempfile.mkdtemp(prefix="nextai-fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_at_border(
    command, args: list[str], inputs: Path, out: Path | None = None, written=()
) -> tuple[int, str]:
    """Invoke `command` in-process; assert the border's promises; return (exit code, output)."""
    before = snapshot(inputs)
    result = CliRunner().invoke(command, args)
    output = result.output
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"{type(result.exception).__name__} escaped:\n{output}"
    assert "Traceback" not in output, output
    assert f"rerun with {DEBUG_ENV}=1" not in output, f"an error no check foresaw:\n{output}"
    if result.exit_code != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1, f"not one line:\n{output}"
    assert snapshot(inputs) == before, "an input changed"
    if out is not None:
        left = sorted(p.name for p in out.iterdir()) if out.exists() else []
        allowed = sorted(written) if result.exit_code == 0 else []
        assert set(left) <= set(allowed), f"left in the output folder: {left}"
    return result.exit_code, output
