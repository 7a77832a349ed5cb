"""The step-end agreement on 2 real processes in one gloo group (no Trainer, no mocked group): a time budget
spent on rank 0 alone stops both ranks after the same step, counts are summed and peaks maxed, and a rank that
dies makes the other's next agreement fail at once with PeerLost."""

import os
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import TrainerControl, TrainerState

from axolotl_nextai.run.callbacks import StopCallback, StopRecord, TimeBudgetCallback
from axolotl_nextai.run.ranks import PeerLost, StepAgreement
from axolotl_nextai.run.time_budget import HOUR

RANKS = 2
pytestmark = pytest.mark.slow  # two spawned processes, each importing Axolotl: ~15-50 s on 2 cores


def agree_then_lose_a_rank(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=RANKS)
    agreement = StepAgreement(timeout_s=60)
    # rank 0 launched an hour ago (its budget is spent), rank 1 just now
    stop = StopRecord()
    launched = time.time() - (HOUR if rank == 0 else 0)
    callbacks = [
        TimeBudgetCallback(1.0, 10.0, 100, "warn", stop, launched),
        StopCallback(stop, agreement, False),
    ]
    state, control = TrainerState(max_steps=10), TrainerControl()
    for callback in callbacks:
        callback.on_train_begin(type("Args", (), {"output_dir": "out"}), state, control)
    while not control.should_training_stop and state.global_step < 5:
        state.global_step += 1
        for callback in callbacks:
            callback.on_step_end(type("Args", (), {"output_dir": "out"}), state, control)
    sums = agreement.reduce([rank + 1.0, 10.0], "sum")
    peaks = agreement.reduce([float(rank), -1.0], "max")
    results[rank] = (stop.reason, stop.step, stop.ranks, control.should_save, sums, peaks)
    if rank == 1:
        os._exit(0)  # gone without a word: rank 0's next agreement must not wait for it
    started = time.monotonic()
    try:
        agreement.any(False)
    except PeerLost as exc:
        results["lost"] = (str(exc), time.monotonic() - started)


def test_a_budget_spent_on_one_rank_stops_both_after_the_same_step_and_a_dead_rank_is_noticed_at_once():
    with mp.Manager() as manager:
        results = manager.dict()
        port = 29_000 + os.getpid() % 1000
        context = mp.start_processes(
            agree_then_lose_a_rank, args=(port, results), nprocs=RANKS, join=False, start_method="spawn"
        )
        while not context.join(timeout=60):
            pass
        results = dict(results)
    for rank in range(RANKS):
        assert results[rank][:4] == ("time_budget", 1, [0], True)  # rank 0's reason, at rank 0's step
        assert results[rank][4:] == ([3.0, 20.0], [1.0, -1.0])
    message, took = results["lost"]
    assert "another rank stopped answering" in message and took < 30
