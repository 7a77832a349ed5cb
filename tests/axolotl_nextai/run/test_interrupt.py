"""SIGTERM / SIGINT become a stop request; a second one goes to the previous handler, after a save in
progress; the launcher's exit stops like a first signal and never counts as a second."""

import os
import signal
from contextlib import contextmanager

from axolotl_nextai.run.interrupt import LAUNCHER_EXITED, StopOnSignal, is_accelerate_launcher


@contextmanager
def catching(*signals):
    """A StopOnSignal installed over handlers that record what reaches them (the "previous" ones): yields
    (catcher, seen)."""
    seen = []
    previous = {s: signal.signal(s, lambda signum, frame: seen.append(signum)) for s in signals}
    catcher = StopOnSignal(signals)
    try:
        catcher.install()
        yield catcher, seen
    finally:
        catcher.uninstall()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_first_signal_is_recorded_second_goes_to_the_previous_handler():
    with catching(signal.SIGTERM) as (catcher, seen):
        os.kill(os.getpid(), signal.SIGTERM)
        assert catcher.received == "SIGTERM" and seen == []
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]


def test_uninstall_restores_the_handlers():
    before = signal.getsignal(signal.SIGINT)
    catcher = StopOnSignal()
    catcher.install()
    assert signal.getsignal(signal.SIGINT) != before
    catcher.uninstall()
    assert signal.getsignal(signal.SIGINT) == before


def test_a_second_signal_during_a_save_waits_for_the_save():
    with catching(signal.SIGTERM) as (catcher, seen):
        os.kill(os.getpid(), signal.SIGTERM)
        catcher.hold()  # a checkpoint is being written
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [] and catcher.pending == signal.SIGTERM
        catcher.release()
        assert seen == [signal.SIGTERM]


def test_the_launchers_exit_stops_like_a_first_signal_and_never_escalates():
    with catching(signal.SIGINT, LAUNCHER_EXITED) as (catcher, seen):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the trainer and the launcher ...
        os.kill(os.getpid(), LAUNCHER_EXITED)  # ... and the launcher's exit follows
        assert catcher.received == "SIGINT" and seen == []


def test_only_accelerates_launcher_counts_as_one():
    assert is_accelerate_launcher(
        ["/venv/bin/python", "/venv/bin/accelerate", "launch", "-m", "axolotl.cli.train"]
    )
    assert is_accelerate_launcher(["python", "-m", "accelerate.commands.launch", "--num_processes", "1"])
    assert not is_accelerate_launcher(["bash"]) and not is_accelerate_launcher(["python", "-m", "pytest"])
    assert not is_accelerate_launcher(["/venv/bin/accelerate", "config"])
