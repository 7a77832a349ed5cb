"""Trainer callbacks of the plugin; their arithmetic lives in `report.py`, tested without a Trainer."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from axolotl_nextai.atomic import atomic_write
from axolotl_nextai.report import REPORT_NAME, summarize


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) as peft counts them (4-bit weights unpacked); plain counting for a non-peft model."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


class RunReportCallback(TrainerCallback):
    """Collects the logged training loss each step and writes the report when training ends."""

    def __init__(self, output_dir: str):
        self.output_dir = str(output_dir)
        self.losses: list[dict] = []
        self.params = (0, 0)
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.started = time.monotonic()
        if model is not None:
            self.params = count_parameters(model)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs and state.is_world_process_zero:
            self.losses.append({"step": state.global_step, "loss": float(logs["loss"])})

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        report = summarize(self.losses, *self.params, time.monotonic() - self.started, self.output_dir)
        with atomic_write(Path(self.output_dir) / REPORT_NAME) as f:
            json.dump(report, f, indent=2)


