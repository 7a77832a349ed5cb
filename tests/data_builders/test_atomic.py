"""Atomic writes: a set of files is written whole or not at all, folders appear complete, modes follow the umask."""

import os

import pytest

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
        write_set({data: "new rows\n", tmp_path / "blocked" / "v5.dropped.jsonl": "x", manifest: "new manifest\n"})
    assert (data.read_text(), manifest.read_text()) == ("old rows\n", "old manifest\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "v5.jsonl", "v5.manifest.json"]  # no temporaries


def test_a_set_replaces_its_files_and_removes_stale_ones(tmp_path):
    data, stale = tmp_path / "v5.jsonl", tmp_path / "v5.contamination.jsonl"
    stale.write_text("from an earlier build")
    write_set({data: "rows\n", tmp_path / "v5.bin": b"\x00\x01"}, stale=[stale, tmp_path / "never-written"])
    assert data.read_text() == "rows\n" and (tmp_path / "v5.bin").read_bytes() == b"\x00\x01" and not stale.exists()


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
