"""Time-budget arithmetic without a Trainer (the CLI test is in test_runtime_cli.py)."""

from axolotl_nextai.run.time_budget import HOUR, must_stop_now, overrun_message, projected_finish_s


def test_projection_is_elapsed_plus_remaining_steps():
    assert projected_finish_s(elapsed_s=600, seconds_per_step=4.5, steps_left=10_000) == 600 + 45_000


def test_stops_when_the_next_step_would_end_inside_the_margin():
    budget, margin = 24 * HOUR, 600
    assert not must_stop_now(budget - margin - 10, 5, budget, margin)
    assert must_stop_now(budget - margin - 4, 5, budget, margin)


def test_overrun_message_gives_projected_hours_and_what_happens():
    warn = overrun_message(30 * HOUR, 24 * HOUR, 10, 9000, "warn")
    assert "30.00 h" in warn and "24.00 h" in warn and "training on" in warn
    assert "stopping now" in overrun_message(30 * HOUR, 24 * HOUR, 10, 9000, "stop")
