"""Bench-only Axolotl plugin: the settings a run trains with, and one optimizer step profiled (issues 13, 25).

A run lists it after its other plugins (`plugins: [..., bench.gpu.step_profile.StepProfilePlugin]`, as the
`*-profile` ablations do; bench/gpu/standalone.py adds the same callback for its engines when the run lists
it). It profiles the run's last optimizer step (max_steps), so that the steps before it, which give the run's
tokens/s, run as they would without it. The summary goes to NEXTAI_BENCH_PROFILE_OUT (gpu70b.sh sets it to the
run's work folder), else to standard error:

- the settings that change a step's cost, as the Trainer holds them at train start (checkpointing and its
  kwargs, attention, the callbacks, which projections Axolotl's LoRA kernels replaced), so that two engines'
  runs can be compared line by line;
- the host's side of the step: operators dispatched (per forward pass), and the reads that make the host wait
  for the GPU (`.item()`, `int(t)`, `.cpu()`, `.tolist()`, `nonzero`) with the code that made them: each one
  stops the host from queueing work ahead, so short passes then run at the host's pace;
- on CUDA: the step's wall time, the time the GPU ran kernels (the union of their intervals: the rest it
  idled), the idle time by tenth of the step, kernel time by kind (matmul, NF4 dequantization, attention,
  Triton, copies, the rest) and the top kernels.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

PLUGIN = "bench.gpu.step_profile.StepProfilePlugin"
# First match wins: attention before matmul (flash kernels are CUTLASS too).
KINDS = [
    ("attention", re.compile(r"fmha|flash|attention|attn|flex", re.IGNORECASE)),
    ("NF4 dequantization", re.compile(r"dequant", re.IGNORECASE)),
    ("matmul", re.compile(r"gemm|nvjet|xmma|cutlass|sm90|cublas|gemv", re.IGNORECASE)),
    ("copy host<->device", re.compile(r"Memcpy (HtoD|DtoH)|Memcpy.*(Pinned|Pageable)", re.IGNORECASE)),
    ("copy on device", re.compile(r"Memcpy|Memset|copy", re.IGNORECASE)),
    ("Triton (Liger, compiled)", re.compile(r"triton|^_\w+_kernel|liger", re.IGNORECASE)),
    (
        "elementwise / reduce",
        re.compile(r"elementwise|vectorized|unrolled|reduce|softmax|index|cat|fill", re.IGNORECASE),
    ),
]
# Host events that wait for the device when their tensor is on it: scalar reads, copies to the host, and ops
# whose output size depends on the data.
SYNCS = re.compile(
    r"^(aten::_local_scalar_dense|aten::nonzero|aten::masked_select|aten::unique\w*|"
    r"<built-in method (cpu|tolist|numpy) of Tensor)"
)
SOURCE = re.compile(r"^(?P<path>[^(]+\.py)\((?P<line>\d+)\): (?P<func>.+)$")
INTERNALS = ("/torch/", "/contextlib.py", "/functools.py", "/threading.py")


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


def idle_by_tenth(intervals: list[tuple[float, float]], start: float, end: float) -> list[float]:
    """Seconds without a kernel in each tenth of [start, end) (microseconds in, seconds out)."""
    width = (end - start) / 10
    tenths = []
    for i in range(10):
        low, high = start + i * width, start + (i + 1) * width
        clipped = [(max(a, low), min(b, high)) for a, b in intervals if b > low and a < high]
        tenths.append(width / 1e6 - busy_seconds(clipped))
    return tenths


def call_site(event) -> str:
    """The nearest Python frame above a profiler event outside torch's own code: `package/file.py:line
    func`."""
    parent = event.cpu_parent
    while parent is not None:
        found = SOURCE.match(parent.name)
        if found and not any(part in found["path"] for part in INTERNALS):
            path = "/".join(Path(found["path"]).parts[-3:])
            return f"{path}:{found['line']} {found['func']}"
        parent = parent.cpu_parent
    return "(no Python frame outside torch)"


def host_lines(events, passes: int) -> list[str]:
    """The host's side of the step: operators dispatched and the reads that wait for the device, by call
    site."""
    ops = [
        e for e in events if e.device_type == torch.autograd.DeviceType.CPU and e.name.startswith("aten::")
    ]
    top = [e for e in ops if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    syncs = Counter(
        f"`{call_site(e)}` ({e.name.split(' of ')[0].removeprefix('<built-in method ')})"
        for e in events
        if e.device_type == torch.autograd.DeviceType.CPU and SYNCS.match(e.name)
    )
    per_pass = f", {len(top) / passes:,.0f} a forward pass ({passes})" if passes else ""
    lines = [
        f"- host: {len(top):,} operators dispatched ({len(ops):,} with those they call){per_pass}; "
        f"{sum(syncs.values())} reads that wait for the device when the tensor is on it"
        + (f", {sum(syncs.values()) / passes:.1f} a forward pass" if passes else ""),
        "",
    ]
    if syncs:
        lines += ["| where the host waits (read) | times in the step |", "|---|---|"]
        lines += [f"| {site} | {count} |" for site, count in syncs.most_common(15)]
    return lines


def kernel_lines(prof, wall_seconds: float) -> list[str]:
    """The step on the GPU: busy, idle by tenth, kernel time by kind and the top kernels."""
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
    if not compute:
        return []
    busy = busy_seconds(compute)
    first, last = min(a for a, _ in compute + copies), max(b for _, b in compute + copies)
    idle = " ".join(f"{s:.3f}" for s in idle_by_tenth(compute, first, last))
    lines = [
        (
            f"- wall: {wall_seconds:.3f} s; GPU running a kernel (not host<->device copies): {busy:.3f} s "
            f"({busy / wall_seconds:.0%}); host<->device copies: {busy_seconds(copies):.3f} s (a side stream)"
        ),
        f"- GPU idle by tenth of the step (s, first kernel to last): {idle}",
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
    return lines


def host_time_lines(prof) -> list[str]:
    """Where the host's time went: the operators with the most time of their own on the CPU."""
    ops = sorted(
        (e for e in prof.key_averages() if e.self_cpu_time_total > 0), key=lambda e: -e.self_cpu_time_total
    )
    lines = ["| operator (host) | calls | own CPU seconds |", "|---|---|---|"]
    return lines + [f"| `{e.key[:80]}` | {e.count} | {e.self_cpu_time_total / 1e6:.3f} |" for e in ops[:12]]


def summary(prof, wall_seconds: float, step: int, passes: int = 0) -> str:
    """The profiled step as markdown: wall, the host's side, and on CUDA the kernels."""
    lines = [f"## Profile of optimizer step {step}", "", f"- wall: {wall_seconds:.3f} s (profiler on)"]
    lines += (
        host_lines(prof.events(), passes)
        + [""]
        + host_time_lines(prof)
        + [""]
        + kernel_lines(prof, wall_seconds)
    )
    return "\n".join(lines) + "\n"


def lora_kernels(model) -> list[str]:
    """The modules whose forward one of Axolotl's LoRA kernels replaced (`apply_lora_*`), by kind."""
    found = Counter()
    for module in model.modules():
        for attr in ("forward", "apply_qkv", "apply_o", "apply_mlp"):
            name = getattr(getattr(module, attr, None), "__name__", "")
            if name.startswith("apply_lora"):
                found[f"{type(module).__name__}.{attr} = {name}"] += 1
    return [f"{name} (x{count})" for name, count in sorted(found.items())]


def settings(args, model, callbacks) -> str:
    """What the Trainer trains with, as far as a step's cost goes: one `key: value` a line."""
    checkpointing = next(
        (
            module._gradient_checkpointing_func
            for module in model.modules()
            if getattr(module, "_gradient_checkpointing_func", None) is not None
        ),
        None,
    )
    fields = [
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "gradient_checkpointing",
        "gradient_checkpointing_kwargs",
        "bf16",
        "tf32",
        "optim",
        "max_grad_norm",
        "logging_steps",
        "train_sampling_strategy",
        "group_by_length",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "torch_empty_cache_steps",
        "include_tkps",
        "include_num_input_tokens_seen",
        "torch_compile",
    ]
    lines = [f"{name}: {getattr(args, name, '(absent)')!r}" for name in fields]
    lines += [
        f"checkpoint function: {getattr(checkpointing, 'keywords', checkpointing)!r}",
        f"attention: {getattr(getattr(model, 'config', None), '_attn_implementation', None)!r}",
        f"LoRA kernels: {', '.join(lora_kernels(model)) or 'none'}",
        f"callbacks: {', '.join(sorted(type(c).__name__ for c in callbacks))}",
    ]
    return "## Settings at train start\n\n```\n" + "\n".join(lines) + "\n```\n\n"


class ProfileStepCallback(TrainerCallback):
    """Writes the run's settings at train start and a profile of its last optimizer step."""

    def __init__(self, out: Path | None, trainer=None):
        self.out = out
        self.trainer = trainer
        self.profiler, self.started, self.step, self.passes, self.hook = None, 0.0, 0, 0, None
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text
        if self.out:
            self.out.write_text(self.text)
        else:
            print(text, file=sys.stderr)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        callbacks = self.trainer.callback_handler.callbacks if self.trainer is not None else []
        self.write(settings(args, model, callbacks))

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 != state.max_steps:
            return
        self.step, self.passes = state.max_steps, 0
        self.hook = model.register_forward_pre_hook(self._count_pass)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities, with_stack=True)
        self.profiler.start()
        self.started = time.perf_counter()

    def _count_pass(self, module, args):
        if module.training:
            self.passes += 1

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall = time.perf_counter() - self.started
        self.profiler.stop()
        self.hook.remove()
        self.write(summary(self.profiler, wall, self.step, self.passes))
        self.profiler = None


def profile_callback(trainer) -> ProfileStepCallback:
    out = os.environ.get("NEXTAI_BENCH_PROFILE_OUT")
    return ProfileStepCallback(Path(out) if out else None, trainer)


class StepProfilePlugin(BasePlugin):
    """Adds ProfileStepCallback; no config keys."""

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        return [profile_callback(trainer)]
