"""Trainer callbacks of the plugin: glue that measures and decides through `report.py`, `throughput.py`,
`time_budget.py`, `interrupt.py` and `ranks.py`, whose arithmetic is tested without a Trainer.

With several ranks every callback runs on every rank, in step: a stop any rank asks for is agreed at the
step's end (`StopCallback`), and the report sums the ranks' tokens and takes the highest peak memory before
rank 0 writes it.
"""

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
from axolotl_nextai.run.ranks import PROGRESS, StepAgreement
from axolotl_nextai.run.report import fmt, fmt_hours, fmt_pct, summarize, write_run_report
from axolotl_nextai.run.throughput import StepClock, count_tokens, linear_weight_count, steps_per_epoch
from axolotl_nextai.run.time_budget import HOUR, must_stop_now, overrun_message, projected_finish_s

LOG = get_logger(__name__)
# A history row's per-rank values: cumulative counts, summed over ranks; peak memory, the highest rank's.
COUNTS = ("real_tokens", "trained_tokens", "computed_tokens", "forward_passes")
PEAKS = ("memory_allocated_gib", "memory_reserved_gib")


def parallelism(model, world_size: int) -> str:
    """How the ranks share the model: "FSDP2" (its modules are `fully_shard`ed), "DDP", or "one process"."""
    from torch.distributed.fsdp import FSDPModule

    if any(isinstance(module, FSDPModule) for module in model.modules()):
        return "FSDP2"
    return "DDP" if world_size > 1 else "one process"


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) as peft counts them, 4-bit weights unpacked (two per byte of their storage dtype),
    and whole under FSDP2, where each parameter is a DTensor: its `numel` is the full tensor's, its local
    shard the packed 4-bit data (peft, seeing a DTensor, would count the packed storage as weights)."""
    trainable = total = 0
    for param in model.parameters():
        local = getattr(param, "_local_tensor", param)
        count = param.numel() * (2 * local.element_size() if type(local).__name__ == "Params4bit" else 1)
        total += count
        trainable += count if param.requires_grad else 0
    return trainable, total


@dataclass
class StopRecord:
    """Why training stopped before `max_steps`: set by the guards below, read by the run report."""

    reason: str | None = None
    step: int | None = None
    ranks: list[int] | None = None  # the ranks that asked, once the ranks have agreed (rank 0 alone with one)

    def request(self, control, reason: str, step: int) -> None:
        """Ask the Trainer to save a full checkpoint after this step and stop; the first reason wins."""
        if self.reason is None:
            self.reason, self.step = reason, step
        control.should_save = True
        control.should_training_stop = True

    def agree(self, control, agreement: StepAgreement, step: int) -> bool:
        """At a step's end, on every rank: stop if any rank asked (one collective); True when stopping. The
        first asking rank's reason becomes every rank's, so the report says why, whichever rank was
        signalled."""
        if not agreement.any(self.reason is not None):
            return False
        if self.ranks is None:
            reasons = agreement.gather(self.reason)
            self.ranks = [rank for rank, reason in enumerate(reasons) if reason]
            self.reason, self.step = reasons[self.ranks[0]], step
        control.should_save = True
        control.should_training_stop = True
        return True


class RunReportCallback(TrainerCallback):
    """Per step: time, real tokens and forward passes (a forward pre-hook), peak memory, loss; writes the
    report every N steps and at the end."""

    def __init__(
        self,
        output_dir: str,
        every_steps: int,
        peak_tflops: float,
        run_info: dict,
        stop: StopRecord,
        launched_at: float,
        agreement: StepAgreement | None = None,
    ):
        self.output_dir = str(output_dir)
        self.agreement = agreement or StepAgreement()
        self.every_steps = every_steps
        self.run_info = {"output_dir": self.output_dir, "peak_tflops": peak_tflops, **run_info}
        self.stop = stop
        self.launched_at = launched_at
        self.history: list[dict] = []
        self.synced = 0  # history rows before this one hold every rank's sums (see `_sync`)
        # cumulative over this session (this process): tokens that are not padding, tokens with a label, every
        # token computed (padding included), training forward passes
        self.counts = dict.fromkeys(COUNTS, 0)
        # [real, trained] of this step's passes so far, on the device (read at step end)
        self.step_counts = None
        self.hook = None
        self.pad_token_id = None  # from the tokenizer at train start: packed rows are padded with it
        self.pending = False

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.started = time.monotonic()
        self.clock = StepClock(self.started)
        trainable, total = count_parameters(model)
        self.run_info.update(
            trainable_params=trainable,
            total_params=total,
            linear_params=linear_weight_count(model.named_modules()),
            device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            dataset_rows=len(train_dataloader.dataset),
            steps_per_epoch=steps_per_epoch(len(train_dataloader), args.gradient_accumulation_steps),
            start_step=state.global_step,
            world_size=self.agreement.size,
            parallelism=parallelism(model, self.agreement.size),
        )
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        self.pad_token_id = getattr(tokenizer, "pad_token_id", None)
        if self.pad_token_id is None:
            self.pad_token_id = getattr(model.config, "pad_token_id", None)
        self.hook = model.register_forward_pre_hook(self._count_tokens, with_kwargs=True)

    def _count_tokens(self, module, args, kwargs):
        if module.training:
            counts = count_tokens(kwargs, self.pad_token_id)
            self.step_counts = counts if self.step_counts is None else self.step_counts + counts
            ids = kwargs.get("input_ids")
            self.counts["computed_tokens"] += ids.numel() if ids is not None else 0
            self.counts["forward_passes"] += 1

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        self.clock.tick(now)
        # one read back a step (the optimizer step has waited for the GPU anyway)
        if self.step_counts is not None:
            real, trained = self.step_counts.tolist()
            self.counts["real_tokens"] += real
            self.counts["trained_tokens"] += trained
            self.step_counts = None
        allocated, reserved = peak_memory_gib()
        self.history.append(
            {
                "step": state.global_step,
                "elapsed_s": now - self.started,
                **self.counts,
                "memory_allocated_gib": allocated,
                "memory_reserved_gib": reserved,
            }
        )
        # A report step: now, or once on_log has this step's loss when the Trainer is about to log it.
        self.pending = (state.global_step - self.run_info["start_step"]) % self.every_steps == 0
        if self.pending and not control.should_log:
            self._progress(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "eval_loss" in logs:  # the same held-out rows each time: the loss a reader can compare
            self.run_info.setdefault("eval_losses", []).append(
                {"step": state.global_step, "loss": float(logs["eval_loss"])}
            )
        if logs and "loss" in logs and self.history and self.history[-1]["step"] == state.global_step:
            self.history[-1].update(loss=float(logs["loss"]), learning_rate=logs.get("learning_rate"))
            if self.pending:
                self._progress(state)

    def _progress(self, state) -> None:
        self.pending = False
        self._sync()
        if state.is_world_process_zero:
            report = self._report(state, final=False)
            write_run_report(report, self.output_dir, final=False)
            LOG.info(progress_line(report))

    def _sync(self) -> None:
        """Every rank's counts summed and peak memory maxed into the rows since the last report (all ranks
        call it at the same steps; rank 0 then writes one report for the run)."""
        rows, self.synced = self.history[self.synced :], len(self.history)
        if self.agreement.size == 1 or not rows:
            return
        sums = iter(self.agreement.reduce([row[key] for row in rows for key in COUNTS], "sum"))
        peaks = iter(
            self.agreement.reduce(
                [row[key] if row[key] is not None else -1.0 for row in rows for key in PEAKS], "max"
            )
        )
        for row in rows:
            row.update({key: int(next(sums)) for key in COUNTS})
            row.update({key: peak if (peak := next(peaks)) >= 0 else None for key in PEAKS})

    def on_train_end(self, args, state, control, **kwargs):
        self.hook.remove()
        self._sync()
        if state.is_world_process_zero:
            report = self._report(state, final=True)
            missing = write_run_report(report, self.output_dir, final=True)
            LOG.info(progress_line(report))
            if missing:
                LOG.warning(f"axolotl-nextai: {missing}")

    def _report(self, state, final: bool) -> dict:
        return summarize(
            self.history,
            {
                **self.run_info,
                "global_step": state.global_step,
                "max_steps": state.max_steps,
                "seconds_per_step": self.clock.seconds_per_step(),
                "wall_time_s": time.monotonic() - self.started,
                "process_time_s": time.time() - self.launched_at,
                "final": final,
                "stop_reason": self.stop.reason,
                "stop_step": self.stop.step,
                "stop_ranks": self.stop.ranks,
            },
        )


def progress_line(report: dict) -> str:
    """One log line from a report: where the run is and what it costs."""
    ranks = report.get("world_size", 1)
    per_gpu = f" ({fmt(report['tokens_per_s_per_gpu'], ',.1f')} per rank, {ranks} ranks)" if ranks > 1 else ""
    return (
        f"nextai report: step {report['global_step']}/{report['max_steps']}, loss "
        f"{fmt(report['final_loss'], '.4f')}, {fmt(report['tokens_per_s'], ',.1f')} real tok/s{per_gpu}, "
        f"MFU {fmt_pct(report['mfu'])}, peak allocated "
        f"{fmt(report['peak_memory_allocated_gib'], '.2f', ' GiB')}, epoch projected "
        f"{fmt_hours(report['projected_epoch_h'])}"
    )


class StopCallback(TrainerCallback):
    """The last callback: where a stop becomes one decision of all ranks. SIGTERM / SIGINT (or the launcher's
    exit) reaching this rank becomes its stop request (see `interrupt.py`); at every step's end the ranks'
    requests are agreed (`StopRecord.agree`), so all of them save the same step's checkpoint and stop. Saves
    are held against a second signal: each checkpoint, and the final adapter that Axolotl writes after
    training, until the plugin's `post_train_unload` calls `finish`. Without `catch_signals` only the time
    budget's requests are agreed."""

    def __init__(self, stop: StopRecord, agreement: StepAgreement, catch_signals: bool = True):
        self.stop = stop
        self.agreement = agreement
        self.catcher = StopOnSignal() if catch_signals else None

    def on_train_begin(self, args, state, control, **kwargs):
        PROGRESS.update(step=state.global_step)
        if self.catcher:
            self.catcher.install()
            PROGRESS.update(stop_signal=lambda: self.catcher.received)

    def on_step_end(self, args, state, control, **kwargs):
        PROGRESS.update(step=state.global_step)
        if self.catcher and self.catcher.received and self.stop.reason is None:
            if self.agreement.size > 1:
                LOG.warning(
                    f"rank {self.agreement.rank}: {self.catcher.received} received", main_process_only=False
                )
            self.stop.request(control, self.catcher.received, state.global_step)
        stopping = self.stop.agree(control, self.agreement, state.global_step)
        # else the budget said it
        if stopping and (self.stop.reason.startswith("SIG") or 0 not in self.stop.ranks):
            LOG.warning(
                f"{stop_message(self.stop, self.agreement.size)}: saving checkpoint-{state.global_step} and "
                "stopping; resume with resume_from_checkpoint: "
                f"{args.output_dir}/checkpoint-{state.global_step}"
            )
        if control.should_save and self.catcher:
            self.catcher.hold()

    def on_save(self, args, state, control, **kwargs):
        PROGRESS.update(checkpoint=f"{args.output_dir}/checkpoint-{state.global_step}")
        if self.catcher:
            self.catcher.release()

    def on_train_end(self, args, state, control, **kwargs):
        if self.catcher:
            self.catcher.hold()

    def finish(self) -> None:
        if self.catcher:
            self.catcher.release()
            self.catcher.uninstall()


def stop_message(stop: StopRecord, world_size: int) -> str:
    """Why the ranks stop: "SIGTERM received" with one rank, "SIGTERM received by rank 1 of 2" with
    several."""
    what = f"{stop.reason} received" if stop.reason.startswith("SIG") else f"{stop.reason} reached"
    if world_size == 1:
        return what
    return (
        f"{what} by rank {', '.join(map(str, stop.ranks))} of {world_size} (all ranks stop at the same step)"
    )


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

    def __init__(
        self,
        budget_hours: float,
        margin_minutes: float,
        warmup_steps: int,
        action: str,
        stop: StopRecord,
        launched_at: float,
    ):
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
                LOG.warning(
                    "\n"
                    + "!" * 100
                    + "\n"
                    + overrun_message(finish, self.budget_s, state.global_step, state.max_steps, self.action)
                    + "\n"
                    + "!" * 100
                )
                if self.action == "stop":
                    self.stop.request(control, "time_budget_projection", state.global_step)
            else:
                LOG.info(
                    f"time budget: projected finish {finish / HOUR:.2f} h after launch, "
                    f"within {self.budget_s / HOUR:.2f} h"
                )
        if state.global_step < state.max_steps and must_stop_now(
            elapsed, per_step, self.budget_s, self.margin_s
        ):
            LOG.warning(
                f"time budget: {elapsed / HOUR:.3f} h of {self.budget_s / HOUR:.3f} h spent; saving "
                f"checkpoint-{state.global_step} and stopping {self.margin_s / 60:g} min before the budget"
            )
            self.stop.request(control, "time_budget", state.global_step)


class FreezeGarbageCollectorCallback(TrainerCallback):
    """Python's full collections walk every tracked object; a loaded 70B model and its data are ~0.7 M of
    them, and each walk stalls the GPU every few steps (how long:
    bench/results/gpu70b-ablations-2026-11-27.md). Freezing them at train start leaves the collector only what
    training creates; they are unfrozen at the end."""

    def on_train_begin(self, args, state, control, **kwargs):
        gc.collect()
        gc.freeze()
        LOG.info(
            f"axolotl-nextai: {gc.get_freeze_count():,} objects frozen out of garbage collection "
            "(nextai_gc_freeze)"
        )

    def on_train_end(self, args, state, control, **kwargs):
        gc.unfreeze()
