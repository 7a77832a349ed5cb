"""The guard callbacks driven step by step with real TrainerState / TrainerControl objects, no Trainer."""

import gc
import os
import signal
import time

from transformers import TrainerControl, TrainerState

from axolotl_nextai.run.callbacks import (
    FreezeGarbageCollectorCallback,
    StopCallback,
    StopRecord,
    TimeBudgetCallback,
    drop_presaved_adapter_config,
)
from axolotl_nextai.run.ranks import StepAgreement
from axolotl_nextai.run.time_budget import HOUR


def run_steps(callback, steps, max_steps=1_000_000):
    state, control = TrainerState(max_steps=max_steps), TrainerControl()
    callback.on_train_begin(None, state, control)
    for _ in range(steps):
        time.sleep(0.01)
        state.global_step += 1
        callback.on_step_end(None, state, control)
        if control.should_training_stop:
            break
    return state, control


def budget(action, spent_h, hours=1.0, margin_minutes=10.0, warmup_steps=2):
    stop = StopRecord()
    callback = TimeBudgetCallback(
        hours, margin_minutes, warmup_steps, action, stop, time.time() - spent_h * HOUR
    )
    return callback, stop


def test_projected_overrun_under_stop_checkpoints_right_after_warm_up():
    callback, stop = budget("stop", spent_h=0.1)
    state, control = run_steps(callback, steps=5)
    assert (stop.reason, stop.step, state.global_step) == ("time_budget_projection", 2, 2)
    assert control.should_save and control.should_training_stop


def test_projected_overrun_under_warn_trains_on():
    callback, stop = budget("warn", spent_h=0.1)
    state, control = run_steps(callback, steps=5)
    assert stop.reason is None and state.global_step == 5 and not control.should_training_stop


def test_inside_the_margin_it_checkpoints_and_stops_whatever_the_projection():
    # 6 s before the margin
    callback, stop = budget("warn", spent_h=1.0 - 10 / 60 - 6 / 3600, warmup_steps=100)
    state, control = run_steps(callback, steps=5, max_steps=10)
    assert stop.reason is None and state.global_step == 5
    callback, stop = budget("warn", spent_h=1.0 - 10 / 60 + 1 / 3600, warmup_steps=100)  # 1 s into the margin
    state, control = run_steps(callback, steps=5, max_steps=10)
    assert (stop.reason, stop.step) == ("time_budget", 1) and control.should_save


def test_sigterm_stops_after_the_current_step():
    stop = StopRecord()
    callback = StopCallback(stop, StepAgreement())
    state, control = TrainerState(max_steps=10), TrainerControl()
    callback.on_train_begin(None, state, control)
    try:
        state.global_step = 3
        os.kill(os.getpid(), signal.SIGTERM)
        assert not control.should_training_stop  # nothing happens until the step ends
        callback.on_step_end(type("Args", (), {"output_dir": "out"}), state, control)
    finally:
        callback.on_train_end(None, state, control)
        callback.finish()  # the plugin's post_train_unload, after the final adapter is saved
    assert (stop.reason, stop.step) == ("SIGTERM", 3) and control.should_save and control.should_training_stop
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_gc_freeze_moves_what_is_alive_at_train_start_out_of_collection_and_back_at_the_end():
    """What is alive at train start (here a stand-in for a model's modules) leaves the collector's
    generations; a cycle made during training is still collected; train end unfreezes."""
    model_objects = [[i] for i in range(50_000)]  # lists: always tracked by the collector
    callback, state, control = FreezeGarbageCollectorCallback(), TrainerState(), TrainerControl()
    gc.unfreeze()
    try:
        callback.on_train_begin(None, state, control)
        assert gc.get_freeze_count() >= len(model_objects)
        assert not any(obj is model_objects[0] for obj in gc.get_objects(generation=2))
        cycle = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
        callback.on_train_end(None, state, control)
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def test_a_presaved_adapter_config_goes_unless_weights_are_beside_it(tmp_path):
    """Axolotl pre-saves adapter_config.json; a run killed before its final save must not leave a folder that
    loads as an adapter without weights."""
    (tmp_path / "adapter_config.json").write_text("{}")
    assert drop_presaved_adapter_config(tmp_path) and not (tmp_path / "adapter_config.json").exists()
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights of an earlier, finished run")
    assert not drop_presaved_adapter_config(tmp_path) and (tmp_path / "adapter_config.json").exists()


def test_the_run_report_reads_token_counts_back_once_a_step_not_at_every_forward_pass(tmp_path):
    """A read of a device tensor (`int(t)`, `.item()`) makes the host wait for the GPU; counting at every
    forward pass did that twice a pass. Now the passes add up on the device and the step's end reads them
    once."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from axolotl_nextai.run.callbacks import RunReportCallback

    class Reads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Reads.count += func is torch.ops.aten._local_scalar_dense.default
            return func(*args, **(kwargs or {}))

    model = torch.nn.Linear(2, 2).train()
    callback = RunReportCallback(tmp_path, 10, 312.0, {}, StopRecord(), time.time())
    state, control = TrainerState(max_steps=2), TrainerControl()
    loader = torch.utils.data.DataLoader(list(range(4)))
    args = type("Args", (), {"gradient_accumulation_steps": 4})()
    tokenizer = type("Tokenizer", (), {"pad_token_id": 0})()
    callback.on_train_begin(
        args, state, control, model=model, train_dataloader=loader, processing_class=tokenizer
    )
    batch = {
        "input_ids": torch.tensor([[5, 6, 7, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0]]),
        "labels": torch.tensor([[-100, 6, 7, -100]]),
    }
    with Reads():
        for _ in range(4):  # the paper's micro-batch 1 x accumulation 4
            callback._count_tokens(model, (), batch)
    assert Reads.count == 0
    state.global_step = 1
    callback.on_step_end(None, state, control)
    last = callback.history[-1]
    assert (last["real_tokens"], last["trained_tokens"], last["computed_tokens"], last["forward_passes"]) == (
        12,
        8,
        16,
        4,
    )
