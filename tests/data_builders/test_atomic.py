"""Atomic writes: a set of files is written whole or not at all, folders appear complete, modes follow the
umask."""

import os

import pytest
from axolotl_launch import ROOT

from data_builders.atomic import atomic_write, replace_dir, staging_dir, write_set


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_a_failed_set_changes_no_file(tmp_path):
    data, manifest = tmp_path / "v5.jsonl", tmp_path / "v5.manifest.json"
    write_set({data: "old rows\n", manifest: "old manifest\n"})
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(OSError):
        write_set(
            {data: "new rows\n", tmp_path / "blocked" / "v5.dropped.jsonl": "x", manifest: "new manifest\n"}
        )
    assert (data.read_text(), manifest.read_text()) == ("old rows\n", "old manifest\n")
    # no temporaries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "v5.jsonl", "v5.manifest.json"]


def test_a_set_replaces_its_files_and_removes_stale_ones(tmp_path):
    data, stale = tmp_path / "v5.jsonl", tmp_path / "v5.contamination.jsonl"
    stale.write_text("from an earlier build")
    write_set({data: "rows\n", tmp_path / "v5.bin": b"\x00\x01"}, stale=[stale, tmp_path / "never-written"])
    assert (
        data.read_text() == "rows\n"
        and (tmp_path / "v5.bin").read_bytes() == b"\x00\x01"
        and not stale.exists()
    )


def test_new_files_and_folders_follow_the_umask(tmp_path, umask_027):
    write_set({tmp_path / "a.jsonl": "x"})
    with atomic_write(tmp_path / "b.json") as f:
        f.write("{}")
    with staging_dir(tmp_path / "model") as staged:
        (staged / "config.json").write_text("{}")
        replace_dir(staged, tmp_path / "model")
    assert oct((tmp_path / "a.jsonl").stat().st_mode & 0o777) == oct(0o640)
    assert oct((tmp_path / "b.json").stat().st_mode & 0o777) == oct(0o640)
    assert oct((tmp_path / "model").stat().st_mode & 0o777) == oct(0o750)


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt), staging_dir(out) as staged:
        (staged / "config.json").write_text("{}")
        raise KeyboardInterrupt  # Ctrl-C half way through the weights
    assert list(tmp_path.iterdir()) == []
    with staging_dir(out) as staged:
        (staged / "config.json").write_text('{"new": true}')
        replace_dir(staged, out)
    assert (out / "config.json").read_text() == '{"new": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_set_is_replaced_all_or_nothing(tmp_path):
    data, manifest, stale = (
        tmp_path / "v5.jsonl",
        tmp_path / "v5.manifest.json",
        tmp_path / "v5.dropped.jsonl",
    )
    write_set({data: "old rows\n", manifest: "old manifest\n"})
    (stale / "x").mkdir(parents=True)  # an earlier companion that cannot be removed: a non-empty folder
    with pytest.raises(OSError):
        write_set({data: "new rows\n", manifest: "new manifest\n"}, stale=[stale])
    assert (data.read_text(), manifest.read_text()) == ("old rows\n", "old manifest\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v5.dropped.jsonl", "v5.jsonl", "v5.manifest.json"]


def test_a_symlinked_target_is_written_through(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "v5.jsonl"
    target.write_text("old rows\n")
    link = tmp_path / "v5.jsonl"
    link.symlink_to(target)
    write_set({link: "new rows\n"})
    with atomic_write(link) as f:
        f.write("newer rows\n")
    assert link.is_symlink() and target.read_text() == "newer rows\n"


def test_temporaries_of_a_killed_writer_are_swept_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    pid = int(dead.stdout)
    left = [tmp_path / f".v5.jsonl.{pid}.ab12cd.tmp", tmp_path / f".model.{pid}.ab12cd.partial"]
    left[0].write_text("16 MiB of rows")
    (left[1] / "sub").mkdir(parents=True)
    alive = tmp_path / f".v5.jsonl.{os.getpid()}.ef34gh.tmp"  # a write in progress, this process's
    alive.write_text("rows")
    write_set({tmp_path / "v5.jsonl": "rows\n"})
    with staging_dir(tmp_path / "model"):
        pass
    assert not left[0].exists() and not left[1].exists() and alive.exists()


SIGTERM_WHILE_STAGING = """
import os, signal, sys, time
from pathlib import Path
import click
from data_builders.atomic import staging_dir
from data_builders.boundary import Guarded

@click.command(cls=Guarded)
def stage():
    with staging_dir(Path(sys.argv[1]) / "model") as staged:
        (staged / "weights.bin").write_bytes(b"x" * (1 << 20))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

stage([])
"""


def test_sigterm_while_staging_leaves_nothing_behind(tmp_path):
    import subprocess
    import sys

    (tmp_path / "out").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_WHILE_STAGING, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 143 and "stopped by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "out").iterdir()) == []
