"""Bench-only Axolotl plugin: profile one optimizer step on the GPU and write where its time went (issue 13).

A run lists it after its other plugins (`plugins: [..., bench.gpu.step_profile.StepProfilePlugin]`, as the
`*-profile` ablations do). It profiles the run's last optimizer step (max_steps), so that the steps before it,
which give the run's tokens/s, run as they would without it. The summary goes to NEXTAI_BENCH_PROFILE_OUT
(gpu70b.sh sets it to the run's work folder), else to standard error. The summary: the
step's wall time, the time the GPU ran kernels (the union of their intervals: the rest it idled), and kernel time
by kind (matmul, NF4 dequantization, attention, Triton, copies, the rest), then the top kernels by time.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

# First match wins: attention before matmul (flash kernels are CUTLASS too).
KINDS = [
    ("attention", re.compile(r"fmha|flash|attention|attn|flex", re.IGNORECASE)),
    ("NF4 dequantization", re.compile(r"dequant", re.IGNORECASE)),
    ("matmul", re.compile(r"gemm|nvjet|xmma|cutlass|sm90|cublas|gemv", re.IGNORECASE)),
    ("copy host<->device", re.compile(r"Memcpy (HtoD|DtoH)|Memcpy.*(Pinned|Pageable)", re.IGNORECASE)),
    ("copy on device", re.compile(r"Memcpy|Memset|copy", re.IGNORECASE)),
    ("Triton (Liger, compiled)", re.compile(r"triton|^_\w+_kernel|liger", re.IGNORECASE)),
    ("elementwise / reduce", re.compile(r"elementwise|vectorized|unrolled|reduce|softmax|index|cat|fill", re.IGNORECASE)),
]


def kind_of(kernel: str) -> str:
    return next((kind for kind, pattern in KINDS if pattern.search(kernel)), "other")


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals in microseconds, as seconds."""
    total, end_so_far = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= end_so_far:
            continue
        total += end - max(start, end_so_far)
        end_so_far = end
    return total / 1e6


def summary(prof, wall_seconds: float, step: int) -> str:
    """The profiled step as markdown: wall, GPU busy, kernel time by kind and the top kernels."""
    by_kind: dict[str, float] = defaultdict(float)
    by_kernel: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    compute, copies = [], []
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        seconds = event.time_range.elapsed_us() / 1e6
        kind = kind_of(event.name)
        by_kind[kind] += seconds
        by_kernel[event.name][0] += seconds
        by_kernel[event.name][1] += 1
        interval = (event.time_range.start, event.time_range.end)
        (copies if kind == "copy host<->device" else compute).append(interval)
    busy = busy_seconds(compute)
    lines = [
        f"## Profile of optimizer step {step}",
        "",
        (f"- wall: {wall_seconds:.3f} s; GPU running a kernel (not host<->device copies): {busy:.3f} s "
         f"({busy / wall_seconds:.0%}); host<->device copies: {busy_seconds(copies):.3f} s (a side stream)"),
        "",
        "| kind | kernel seconds | share of kernel time |",
        "|---|---|---|",
    ]
    kernel_total = sum(seconds for kind, seconds in by_kind.items() if kind != "copy host<->device")
    for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1]):
        share = f"{seconds / kernel_total:.1%}" if kind != "copy host<->device" else "(side stream)"
        lines.append(f"| {kind} | {seconds:.3f} | {share} |")
    lines += ["", "| kernel | kind | calls | seconds |", "|---|---|---|---|"]
    for name, (seconds, calls) in sorted(by_kernel.items(), key=lambda item: -item[1][0])[:40]:
        lines.append(f"| `{name[:110]}` | {kind_of(name)} | {calls} | {seconds:.4f} |")
    return "\n".join(lines) + "\n"


class ProfileStepCallback(TrainerCallback):
    """Runs torch.profiler over the last optimizer step only."""

    def __init__(self, out: Path | None):
        self.out = out
        self.profiler, self.started, self.step = None, 0.0, 0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 != state.max_steps or not torch.cuda.is_available():
            return
        self.step = state.max_steps
        torch.cuda.synchronize()
        self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                           torch.profiler.ProfilerActivity.CUDA])
        self.profiler.start()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is None:
            return
        torch.cuda.synchronize()
        wall = time.perf_counter() - self.started
        self.profiler.stop()
        text = summary(self.profiler, wall, self.step)
        self.profiler = None
        if self.out:
            self.out.write_text(text)
        else:
            print(text, file=sys.stderr)


class StepProfilePlugin(BasePlugin):
    """Adds ProfileStepCallback; no config keys."""

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        out = os.environ.get("NEXTAI_BENCH_PROFILE_OUT")
        return [ProfileStepCallback(Path(out) if out else None)]
