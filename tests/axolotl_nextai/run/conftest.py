"""The reference run of the runtime tests: one process, checkpoints every EVERY steps; the one-process tests interrupt
and resume against it, the several-rank tests train the same rows and must reach its losses."""

import pytest
from axolotl_launch import launch_train
from runtime_runs import EVERY, STEPS, read_report, runtime_config


@pytest.fixture(scope="session")
def reference(tiny_model, tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    # Checkpoints every EVERY steps: the interrupted run starts from this run's checkpoint-EVERY (test_runtime_cli).
    cfg = runtime_config(tiny_model, work, save_strategy="steps", save_steps=EVERY, save_total_limit=STEPS)
    result = launch_train(cfg, work)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return work, log, read_report(work / "out")
