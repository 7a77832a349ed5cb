"""The Hub path a user takes first: `nextai-data build --mixture v5` with no --source-dir, run as a user runs
it against a local server (HF_ENDPOINT) that serves v5's six repositories in the layouts they have on the Hub
(hub_repos.py says where each comes from): the real `huggingface_hub` and `datasets` code, the pinned
revisions, gated LIMA. The errors a user meets there (gated, offline, a renamed split, a wrong config) are one
line each, before the embedding model loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from axolotl_launch import ROOT
from hub_repos import GRANTED_TOKEN, v5_repos
from hub_server import HubServer

from data_builders.sources import dolly, faithdial, open_platypus

PINNED = {"dolly": dolly.REVISION, "open_platypus": open_platypus.REVISION, "faithdial": faithdial.REVISION}


@pytest.fixture(scope="module")
def hub():
    with HubServer(v5_repos()) as server:
        yield server


def nextai_data(hub, home: Path, *args, token: str | None = None, offline: bool = False):
    """The console script with the Hub at `hub`, a fresh HF cache in `home` and, unless given, no token."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),
        HF_HUB_OFFLINE=str(int(offline)),
        HF_DATASETS_OFFLINE=str(int(offline)),
        PYTHONPATH=str(ROOT),
        **({"HF_TOKEN": token} if token else {}),
    )
    return subprocess.run(
        [str(Path(sys.executable).with_name("nextai-data")), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def hub_build(hub, tmp_path_factory):
    """v5 from the Hub by a user whose token was granted LIMA's terms."""
    home, out = tmp_path_factory.mktemp("hf-home"), tmp_path_factory.mktemp("hub-build") / "v5.jsonl"
    done = nextai_data(
        hub, home, "build", "--mixture", "v5", "--encoder", "torch", "--out", out, token=GRANTED_TOKEN
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(out.with_name("v5.manifest.json").read_text()), list(hub.requests)


def test_the_hub_gives_the_rows_the_local_files_give(hub_build, demo_jsonl):
    """The served repositories hold the shipped sample's rows in each Hub layout; the build is the --sample
    one."""
    out, manifest, _ = hub_build
    assert out.read_bytes() == demo_jsonl.read_bytes()
    assert set(manifest["sources"]) == {
        "dolly",
        "open_platypus",
        "codegen",
        "faithdial",
        "multi_news",
        "lima",
    }


def test_each_source_is_read_at_its_pinned_revision_and_the_manifest_says_which_commit(hub_build, hub):
    _, manifest, requests = hub_build
    heads = {repo.repo_id: repo.refs["main"] for repo in hub.repos.values()}
    for name, stats in manifest["sources"].items():
        origin = stats["origin"]
        pinned = PINNED.get(name, "main")
        assert origin["revision"] == pinned, name
        # main moved on
        assert origin["commit"] == (pinned if name in PINNED else heads[origin["hub_id"]]), name
    assert manifest["sources"]["faithdial"]["origin"]["files"] == ["data/train.json"]
    assert manifest["sources"]["multi_news"]["origin"]["files"] == [
        "data/train.src.cleaned",
        "data/train.tgt",
    ]
    fetched = {path for method, path in requests if method == "GET" and "/resolve/" in path}
    assert (
        f"/datasets/databricks/databricks-dolly-15k/resolve/{dolly.REVISION}/databricks-dolly-15k.jsonl"
        in fetched
    )
    assert not [p for p in fetched if p.endswith(".py")]  # no loading script is read, let alone run


@pytest.fixture
def bad_mixture(tmp_path):
    """A user-defined source read from the served codegen repository, with one key changed."""

    def write(**change):
        entry = {
            "source": "mine",
            "percent": 100,
            "hub_id": "skar02/codegen",
            "fields": {"instruction": "instruction", "output": "output"},
            **change,
        }
        path = tmp_path / "mine.yaml"
        path.write_text(yaml.safe_dump({"name": "mine", "seed": 1, "sources": [entry]}))
        return path

    return write


@pytest.mark.parametrize("case", ["gated", "offline", "renamed split", "wrong config"])
def test_a_source_the_hub_cannot_give_is_one_line_naming_it_and_the_way_out(case, hub, tmp_path, bad_mixture):
    mixture = {
        "renamed split": lambda: bad_mixture(split="validation"),
        "wrong config": lambda: bad_mixture(config="python"),
    }.get(case, lambda: "v5")()
    args = ["build", "--mixture", mixture, "--out", tmp_path / "out" / "v5.jsonl"]
    if case == "gated":  # the other sources local, so LIMA is the one the Hub is asked for
        args += [
            arg
            for name in ("dolly", "open_platypus", "codegen", "faithdial", "multi_news")
            for arg in ("--path", f"{name}={ROOT}/data_builders/sample/{name}.jsonl")
        ]
    done = nextai_data(hub, tmp_path / "hf-home", *args, offline=case == "offline")
    expected = {
        "gated": "source lima: GAIR/lima@main: gated on the Hub and this machine has no access (accept its "
        "terms at https://huggingface.co/datasets/GAIR/lima, then `hf auth login` or set HF_TOKEN); give a "
        "local copy with --source-dir DIR or --path lima=FILE",
        "offline": f"source dolly: databricks/databricks-dolly-15k@{dolly.REVISION[:12]}: the Hub cannot be "
        "reached (offline: HF_HUB_OFFLINE=1, or no network) and no copy is cached; give a local copy with "
        "--source-dir DIR or --path dolly=FILE",
        "renamed split": "source mine: skar02/codegen@main: no split 'validation' (splits: train); give a "
        "local copy with --source-dir DIR or --path mine=FILE",
        "wrong config": "source mine: skar02/codegen@main: no config 'python' (BuilderConfig 'python' not "
        "found. Available: ['default']); give a local copy with --source-dir DIR or --path mine=FILE",
    }[case]
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (1, f"Error: {expected}")
    assert "Traceback" not in done.stderr and "Loading weights" not in done.stderr  # before the model loads
    assert not (tmp_path / "out").exists()
