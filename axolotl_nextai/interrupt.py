"""SIGTERM / SIGINT as a request to stop after the current step, so a pre-empted run keeps its progress.

The first signal only records itself: the trainer callback then saves a full checkpoint (adapter, optimizer,
scheduler, RNG and data position) and stops. A second signal restores the previous handler and re-delivers
itself, for when the step takes too long. Installed when training begins, after Axolotl's own SIGINT
handler (axolotl/train.py, which saves only the adapter and exits), and uninstalled when training ends.
"""

from __future__ import annotations

import os
import signal

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal:
    """Records the first SIGTERM / SIGINT in `received` (its name); re-raises the second."""

    def __init__(self, signals: tuple[signal.Signals, ...] = SIGNALS):
        self.signals = signals
        self.received: str | None = None
        self.previous: dict[signal.Signals, object] = {}

    def install(self) -> None:
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            return
        previous = self.previous.get(signal.Signals(signum))
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        os.kill(os.getpid(), signum)
