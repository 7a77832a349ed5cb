"""Trainer callbacks of the plugin: glue that measures and decides through `report.py`, `throughput.py`,
`time_budget.py` and `interrupt.py`, whose arithmetic is tested without a Trainer."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from axolotl.utils.logging import get_logger
from transformers import TrainerCallback

from axolotl_nextai.models.checkpoint import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from axolotl_nextai.run.interrupt import StopOnSignal
from axolotl_nextai.run.memory import peak_memory_gib
from axolotl_nextai.run.report import fmt, fmt_hours, fmt_pct, summarize, write_run_report
from axolotl_nextai.run.throughput import StepClock, count_tokens, linear_weight_count, steps_per_epoch
from axolotl_nextai.run.time_budget import HOUR, must_stop_now, overrun_message, projected_finish_s

LOG = get_logger(__name__)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) as peft counts them (4-bit weights unpacked); plain counting for a non-peft model."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


@dataclass
class StopRecord:
    """Why training stopped before `max_steps`: set by the guards below, read by the run report."""

    reason: str | None = None
    step: int | None = None

    def request(self, control, reason: str, step: int) -> None:
        """Ask the Trainer to save a full checkpoint after this step and stop; the first reason wins."""
        if self.reason is None:
            self.reason, self.step = reason, step
        control.should_save = True
        control.should_training_stop = True


class RunReportCallback(TrainerCallback):
    """Per step: time, real tokens and forward passes (a forward pre-hook), peak memory, loss; writes the report
    every N steps and at the end."""

    def __init__(self, output_dir: str, every_steps: int, peak_tflops: float, run_info: dict,
                 stop: StopRecord, launched_at: float):
        self.output_dir = str(output_dir)
        self.every_steps = every_steps
        self.run_info = {"output_dir": self.output_dir, "peak_tflops": peak_tflops, **run_info}
        self.stop = stop
        self.launched_at = launched_at
        self.history: list[dict] = []
        # cumulative over this session (this process): tokens that are not padding, tokens with a label, every
        # token computed (padding included), training forward passes
        self.counts = dict.fromkeys(("real_tokens", "trained_tokens", "computed_tokens", "forward_passes"), 0)
        self.hook = None
        self.pad_token_id = None  # from the tokenizer at train start: packed rows are padded with it
        self.pending = False

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.started = time.monotonic()
        self.clock = StepClock(self.started)
        trainable, total = count_parameters(model)
        self.run_info.update(
            trainable_params=trainable, total_params=total, linear_params=linear_weight_count(model.named_modules()),
            device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            dataset_rows=len(train_dataloader.dataset),
            steps_per_epoch=steps_per_epoch(len(train_dataloader), args.gradient_accumulation_steps),
            start_step=state.global_step,
        )
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        self.pad_token_id = getattr(tokenizer, "pad_token_id", None)
        if self.pad_token_id is None:
            self.pad_token_id = getattr(model.config, "pad_token_id", None)
        self.hook = model.register_forward_pre_hook(self._count_tokens, with_kwargs=True)

    def _count_tokens(self, module, args, kwargs):
        if module.training:
            real, trained = count_tokens(kwargs, self.pad_token_id)
            ids = kwargs.get("input_ids")
            self.counts["real_tokens"] += real
            self.counts["trained_tokens"] += trained
            self.counts["computed_tokens"] += ids.numel() if ids is not None else 0
            self.counts["forward_passes"] += 1

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        self.clock.tick(now)
        allocated, reserved = peak_memory_gib()
        self.history.append({
            "step": state.global_step, "elapsed_s": now - self.started, **self.counts,
            "memory_allocated_gib": allocated, "memory_reserved_gib": reserved,
        })
        # A report step: now, or once on_log has this step's loss when the Trainer is about to log it.
        self.pending = (state.global_step - self.run_info["start_step"]) % self.every_steps == 0
        if self.pending and not control.should_log:
            self._progress(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "eval_loss" in logs:  # the same held-out rows each time: the loss a reader can compare
            self.run_info.setdefault("eval_losses", []).append({"step": state.global_step,
                                                                "loss": float(logs["eval_loss"])})
        if logs and "loss" in logs and self.history and self.history[-1]["step"] == state.global_step:
            self.history[-1].update(loss=float(logs["loss"]), learning_rate=logs.get("learning_rate"))
            if self.pending:
                self._progress(state)

    def _progress(self, state) -> None:
        self.pending = False
        if state.is_world_process_zero:
            report = self._report(state, final=False)
            write_run_report(report, self.output_dir, final=False)
            LOG.info(progress_line(report))

    def on_train_end(self, args, state, control, **kwargs):
        self.hook.remove()
        if state.is_world_process_zero:
            report = self._report(state, final=True)
            missing = write_run_report(report, self.output_dir, final=True)
            LOG.info(progress_line(report))
            if missing:
                LOG.warning(f"axolotl-nextai: {missing}")

    def _report(self, state, final: bool) -> dict:
        return summarize(self.history, {
            **self.run_info,
            "global_step": state.global_step, "max_steps": state.max_steps,
            "seconds_per_step": self.clock.seconds_per_step(),
            "wall_time_s": time.monotonic() - self.started, "process_time_s": time.time() - self.launched_at,
            "final": final, "stop_reason": self.stop.reason, "stop_step": self.stop.step,
        })


def progress_line(report: dict) -> str:
    """One log line from a report: where the run is and what it costs."""
    return (
        f"nextai report: step {report['global_step']}/{report['max_steps']}, loss {fmt(report['final_loss'], '.4f')}, "
        f"{fmt(report['tokens_per_s'], ',.1f')} real tok/s, MFU {fmt_pct(report['mfu'])}, "
        f"peak allocated {fmt(report['peak_memory_allocated_gib'], '.2f', ' GiB')}, "
        f"epoch projected {fmt_hours(report['projected_epoch_h'])}"
    )


class SignalStopCallback(TrainerCallback):
    """SIGTERM / SIGINT (or the launcher's exit): finish the step, save a full checkpoint, stop (see
    `interrupt.py`). Saves are held against a second signal: each checkpoint, and the final adapter that
    Axolotl writes after training, until the plugin's `post_train_unload` calls `finish`."""

    def __init__(self, stop: StopRecord):
        self.stop = stop
        self.catcher = StopOnSignal()

    def on_train_begin(self, args, state, control, **kwargs):
        self.catcher.install()

    def on_step_end(self, args, state, control, **kwargs):
        if self.catcher.received:
            LOG.warning(f"{self.catcher.received} received: saving checkpoint-{state.global_step} and stopping; "
                        f"resume with resume_from_checkpoint: {args.output_dir}/checkpoint-{state.global_step}")
            self.stop.request(control, self.catcher.received, state.global_step)
        if control.should_save:
            self.catcher.hold()

    def on_save(self, args, state, control, **kwargs):
        self.catcher.release()

    def on_train_end(self, args, state, control, **kwargs):
        self.catcher.hold()

    def finish(self) -> None:
        self.catcher.release()
        self.catcher.uninstall()


class CompleteAdapterCallback(TrainerCallback):
    """Axolotl pre-saves `adapter_config.json` into `output_dir` before training; a run that dies before the
    final save would leave a folder that looks like an adapter and has no weights. Removed at train start when
    no weights lie beside it; the final save writes the weights, then the config."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and drop_presaved_adapter_config(Path(args.output_dir)):
            LOG.info("axolotl-nextai: adapter_config.json is written with the adapter's weights at the end")


def drop_presaved_adapter_config(folder: Path) -> bool:
    """Remove `folder/adapter_config.json` if no adapter weights are beside it; True if removed."""
    config = folder / ADAPTER_CONFIG
    if config.is_file() and not any((folder / name).exists() for name in ADAPTER_WEIGHTS):
        config.unlink()
        return True
    return False


class TimeBudgetCallback(TrainerCallback):
    """Projects the finish after warm-up (warns, or stops by key) and stops with a checkpoint before the
    budget, counted from launch, is spent (see `time_budget.py`)."""

    def __init__(self, budget_hours: float, margin_minutes: float, warmup_steps: int, action: str,
                 stop: StopRecord, launched_at: float):
        self.budget_s = budget_hours * HOUR
        self.margin_s = margin_minutes * 60
        self.warmup_steps = warmup_steps
        self.action = action
        self.stop = stop
        self.launched_at = launched_at
        self.projected = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.clock = StepClock(time.time())
        self.start_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        self.clock.tick(now)
        elapsed, per_step = now - self.launched_at, self.clock.seconds_per_step()
        if not self.projected and state.global_step - self.start_step >= self.warmup_steps:
            self.projected = True
            finish = projected_finish_s(elapsed, per_step, state.max_steps - state.global_step)
            if finish > self.budget_s:
                LOG.warning("\n" + "!" * 100 + "\n" + overrun_message(
                    finish, self.budget_s, state.global_step, state.max_steps, self.action) + "\n" + "!" * 100)
                if self.action == "stop":
                    self.stop.request(control, "time_budget_projection", state.global_step)
            else:
                LOG.info(f"time budget: projected finish {finish / HOUR:.2f} h after launch, "
                         f"within {self.budget_s / HOUR:.2f} h")
        if state.global_step < state.max_steps and must_stop_now(elapsed, per_step, self.budget_s, self.margin_s):
            LOG.warning(f"time budget: {elapsed / HOUR:.3f} h of {self.budget_s / HOUR:.3f} h spent; saving "
                        f"checkpoint-{state.global_step} and stopping {self.margin_s / 60:g} min before the budget")
            self.stop.request(control, "time_budget", state.global_step)


class FreezeGarbageCollectorCallback(TrainerCallback):
    """Python's full collections walk every tracked object; a loaded 70B model and its data are ~0.7 M of them, and
    each walk stalled the GPU ~1.3 s every few steps (bench/results/gpu70b-ablations-2026-11-27.md). Freezing them at
    train start leaves the collector only what training creates; they are unfrozen at the end."""

    def on_train_begin(self, args, state, control, **kwargs):
        gc.collect()
        gc.freeze()
        LOG.info(f"axolotl-nextai: {gc.get_freeze_count():,} objects frozen out of garbage collection (nextai_gc_freeze)")

    def on_train_end(self, args, state, control, **kwargs):
        gc.unfreeze()
