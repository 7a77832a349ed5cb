"""SIGTERM / SIGINT become a stop request; a second one goes to the previous handler."""

import os
import signal

from axolotl_nextai.interrupt import StopOnSignal


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
