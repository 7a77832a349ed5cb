"""Bench-only probe, on PYTHONPATH of a GPU run: time Python's garbage collections in every process and print
a summary at exit; with NEXTAI_BENCH_GC=off also turn the collector off. It tests whether the ~1 s stalls seen
every few optimizer steps on the 70B runs are full (generation 2) collections over the loaded model's
objects."""

import atexit
import gc
import os
import sys
import time

if os.environ.get("NEXTAI_BENCH_GC") == "off":
    gc.disable()

_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_started = [0.0]


def _time_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pauses[info["generation"]].append(time.perf_counter() - _started[0])


@atexit.register
def _summary() -> None:
    if not any(_pauses.values()):
        return
    parts = [
        f"gen{g} {len(p)} x, {sum(p):.2f} s, max {max(p, default=0.0):.3f} s" for g, p in _pauses.items()
    ]
    print(
        f"gc_probe pid {os.getpid()} ({len(gc.get_objects())} tracked objects): " + "; ".join(parts),
        file=sys.stderr,
    )


gc.callbacks.append(_time_collection)
