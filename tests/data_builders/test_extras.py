"""Optional features behind pyproject extras (data_builders/extras.py): the table says what pyproject
installs, a missing extra is one line naming its `pip install` at the entry point, and training or a build
imports none of them. "Not installed" is a `None` in `sys.modules`, in a subprocess: Python then refuses the
import (ModuleNotFoundError) and `find_spec` finds nothing, as for a package that is not there."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tomllib
from axolotl_launch import OFFLINE_ENV, ROOT
from click.testing import CliRunner
from packaging.requirements import Requirement

from data_builders import nextai_data as data_cli
from data_builders.dedup.embed import openvino_fallback
from data_builders.extras import EXTRAS, PACKAGE, MissingExtra, require_extra

OPTIONAL_MODULES = sorted(module for modules in EXTRAS.values() for module in modules)
RUN_WITHOUT = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False
    )


def requirement_names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name for r in requirements}


def test_each_extra_installs_what_the_table_names_and_the_core_none_of_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {extra: requirement_names(extras[extra]) for extra in EXTRAS} == {
        extra: set(modules.values()) for extra, modules in EXTRAS.items()
    }
    assert extras["all"] == [f"{PACKAGE}[{','.join(EXTRAS)}]"]
    assert f"{PACKAGE}[all]" in extras["dev"]  # make test and make demo install .[dev]: every feature
    optional = {name for modules in EXTRAS.values() for name in modules.values()}
    assert not requirement_names(project["dependencies"]) & optional


def test_the_readme_table_names_each_extra_and_what_it_installs():
    rows = re.findall(
        r"^  \| `([\w-]+)` \| .* \|([^|]*)\|$", (ROOT / "README.md").read_text(), flags=re.MULTILINE
    )
    assert {extra: installs.strip() for extra, installs in rows if installs.strip()} == {
        extra: ", ".join(modules.values()) for extra, modules in EXTRAS.items()
    }
    assert [extra for extra, _ in rows] == [*EXTRAS, "all", "dev"]


def test_require_extra_names_only_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "usearch", None)
    require_extra("--near-dedup prefilter", "dedup-fast", "model2vec")
    with pytest.raises(MissingExtra) as err:
        require_extra("--near-dedup prefilter", "dedup-fast", "model2vec", "usearch")
    assert str(err.value) == "--near-dedup prefilter needs usearch: pip install 'axolotl-nextai[dedup-fast]'"


@pytest.mark.parametrize(
    ("absent", "argv", "line"),
    [
        (
            "fastapi,uvicorn",
            ["axolotl_nextai.serve.nextai_serve", "--base-model", "x"],
            "nextai-serve needs fastapi, uvicorn: pip install 'axolotl-nextai[serve]'",
        ),
        (
            "lm_eval",
            ["axolotl_nextai.eval.cli", "--base-model", "x"],
            "nextai-eval needs lm-eval: pip install 'axolotl-nextai[eval]'",
        ),
        (
            "gguf",
            ["axolotl_nextai.models.real_model"],
            "nextai-real-model needs gguf: pip install 'axolotl-nextai[real-model]'",
        ),
    ],
)
def test_a_command_without_its_extra_says_which_to_install(absent, argv, line):
    done = run_python("-c", RUN_WITHOUT, absent, *argv)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", f"Error: {line}")


@pytest.mark.parametrize(
    ("absent", "option", "line"),
    [
        (
            "model2vec",
            "--near-dedup=prefilter",
            "--near-dedup prefilter needs model2vec: pip install 'axolotl-nextai[dedup-fast]'",
        ),
        (
            "openvino",
            "--encoder=openvino",
            "--encoder openvino needs openvino: pip install 'axolotl-nextai[dedup-fast]'",
        ),
    ],
)
def test_a_build_without_its_extra_says_which_to_install_before_reading_a_row(
    absent, option, line, monkeypatch, tmp_path
):
    monkeypatch.setitem(sys.modules, absent, None)
    done = CliRunner().invoke(
        data_cli.main,
        [
            "build",
            "--mixture",
            "v5",
            "--sample",
            "--device",
            "cpu",
            option,
            "--out",
            str(tmp_path / "v5.jsonl"),
        ],
    )
    assert (done.exit_code, done.output.strip()) == (1, f"Error: {line}")
    assert not list(tmp_path.iterdir())


def test_auto_without_openvino_runs_torch_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert data_cli.check_backend("cpu", "auto") == ("cpu", "torch")
    assert capsys.readouterr().err == f"note: {openvino_fallback('auto', 'cpu')}\n"


def test_training_and_a_build_import_no_optional_package():
    """The plugin, a build (near-dedup, decontamination from local files) and every command's module as
    imported before its check runs."""
    core = [
        "axolotl_nextai.plugin",
        "data_builders.build",
        "data_builders.nextai_data",
        "axolotl_nextai.serve.nextai_serve",
        "axolotl_nextai.serve.client",
        "axolotl_nextai.eval.cli",
        "axolotl_nextai.models.real_model",
    ]
    code = (
        f"import sys\nfor m in {core!r}: __import__(m)\nprint(sorted(set({OPTIONAL_MODULES!r}) & "
        "set(sys.modules)))"
    )
    done = run_python("-c", code)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]
