"""Content keys for the prepared-data cache (the CLI test is in test_runtime_cli.py)."""

from pathlib import Path

from axolotl_nextai.run.prepared_cache import content_digest, content_keyed_path, local_dataset_paths


def test_digest_follows_content_not_modification_time(tmp_path):
    data = tmp_path / "v5.jsonl"
    data.write_text('{"a": 1}\n')
    first = content_digest([data])
    data.write_text('{"a": 1}\n')
    assert content_digest([data]) == first
    data.write_text('{"a": 1}\n{"a": 2}\n')
    assert content_digest([data]) != first


def test_a_folder_is_hashed_file_by_file(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "part-0.parquet").write_bytes(b"x")
    first = content_digest([tmp_path / "ds"])
    (tmp_path / "ds" / "part-1.parquet").write_bytes(b"y")
    assert content_digest([tmp_path / "ds"]) != first


def test_only_existing_local_paths_count(tmp_path):
    data = tmp_path / "v5.jsonl"
    data.write_text("{}\n")
    cfg = {
        "datasets": [{"path": str(data)}, {"path": "garage-bAInd/Open-Platypus"}],
        "test_datasets": [{"path": str(data)}],
    }
    assert local_dataset_paths(cfg) == [data, data]
    assert content_digest(local_dataset_paths({"datasets": [{"path": "databricks/dolly"}]})) is None


def test_keyed_path_is_a_subfolder_and_idempotent():
    keyed = content_keyed_path("outputs/prepared", "ab" * 32)
    assert keyed == str(Path("outputs/prepared") / ("data-sha256-" + "ab" * 8))
    assert content_keyed_path(keyed, "ab" * 32) == keyed
    assert content_keyed_path(None, "ab" * 32).startswith("last_run_prepared")
