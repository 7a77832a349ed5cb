"""SIGTERM / SIGINT become a stop request; a second one goes to the previous handler."""

import os
import signal

from axolotl_nextai.interrupt import LAUNCHER_EXITED, StopOnSignal, is_accelerate_launcher


def test_first_signal_is_recorded_second_goes_to_the_previous_handler():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    catcher = StopOnSignal((signal.SIGTERM,))
    try:
        catcher.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert catcher.received == "SIGTERM" and seen == []
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        catcher.uninstall()
        signal.signal(signal.SIGTERM, previous)


def test_uninstall_restores_the_handlers():
    before = signal.getsignal(signal.SIGINT)
    catcher = StopOnSignal()
    catcher.install()
    assert signal.getsignal(signal.SIGINT) != before
    catcher.uninstall()
    assert signal.getsignal(signal.SIGINT) == before


def test_a_second_signal_during_a_save_waits_for_the_save():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    catcher = StopOnSignal((signal.SIGTERM,))
    try:
        catcher.install()
        os.kill(os.getpid(), signal.SIGTERM)
        catcher.hold()  # a checkpoint is being written
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [] and catcher.pending == signal.SIGTERM
        catcher.release()
        assert seen == [signal.SIGTERM]
    finally:
        catcher.uninstall()
        signal.signal(signal.SIGTERM, previous)


def test_the_launchers_exit_stops_like_a_first_signal_and_never_escalates():
    seen = []
    previous = {s: signal.signal(s, lambda signum, frame: seen.append(signum)) for s in (signal.SIGINT, LAUNCHER_EXITED)}
    catcher = StopOnSignal((signal.SIGINT, LAUNCHER_EXITED))
    try:
        catcher.install()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the trainer and the launcher
        os.kill(os.getpid(), LAUNCHER_EXITED)  # ... and the launcher's exit follows
        assert catcher.received == "SIGINT" and seen == []
    finally:
        catcher.uninstall()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_only_accelerates_launcher_counts_as_one():
    assert is_accelerate_launcher(["/venv/bin/python", "/venv/bin/accelerate", "launch", "-m", "axolotl.cli.train"])
    assert is_accelerate_launcher(["python", "-m", "accelerate.commands.launch", "--num_processes", "1"])
    assert not is_accelerate_launcher(["bash"]) and not is_accelerate_launcher(["python", "-m", "pytest"])
    assert not is_accelerate_launcher(["/venv/bin/accelerate", "config"])
