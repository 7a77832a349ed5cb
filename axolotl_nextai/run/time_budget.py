"""The challenge's time limit (one GPU, 24 hours) as arithmetic: when to warn, when to stop.

The budget counts from this process's launch, so model loading and data preparation are in it, as they
were in the challenge. The callback in `callbacks.py` calls these functions at every optimizer step end.
"""

from __future__ import annotations

import psutil

HOUR = 3600.0


def launch_time() -> float:
    """When this process started, in `time.time()` seconds (model loading and data prep count)."""
    return psutil.Process().create_time()


def projected_finish_s(elapsed_s: float, seconds_per_step: float, steps_left: int) -> float:
    """Seconds from launch to the last step at the current pace."""
    return elapsed_s + seconds_per_step * steps_left


def must_stop_now(elapsed_s: float, seconds_per_step: float, budget_s: float, margin_s: float) -> bool:
    """True when one more step would end inside the margin kept for saving before the budget is spent."""
    return elapsed_s + seconds_per_step > budget_s - margin_s


def overrun_message(projected_s: float, budget_s: float, step: int, max_steps: int, action: str) -> str:
    """The loud warning for a projected overrun; says what happens next under `action`."""
    then = (
        "stopping now with a checkpoint (nextai_time_budget_action: stop)"
        if action == "stop"
        else "training on; a checkpoint is saved and training stops before the budget is spent"
    )
    return (
        f"TIME BUDGET: at step {step}/{max_steps} the run is projected to take {projected_s / HOUR:.2f} h, "
        f"over its {budget_s / HOUR:.2f} h budget (nextai_time_budget_hours); {then}. "
        f"Shorten the run (max_steps, num_epochs, fewer rows) or raise the budget."
    )
