"""SIGTERM / SIGINT as a request to stop after the current step, so a pre-empted run keeps its progress.

The first signal only records itself: the trainer callback then saves a full checkpoint (adapter, optimizer,
scheduler, RNG and data position) and stops. A second SIGTERM / SIGINT restores the previous handler and
re-delivers itself, for when the step takes too long; while files are being saved (`hold`) it waits for the
save to end, so a checkpoint or adapter folder is never left half written. Installed when training begins,
after Axolotl's own SIGINT handler (axolotl/train.py, which saves only the adapter and exits).

`accelerate launch` runs the trainer as a child and does not forward signals: SIGTERM to the launcher ends it
and leaves the trainer running. `stop_with_launcher` asks Linux to send the trainer SIGUSR1 when its launcher
exits (PR_SET_PDEATHSIG), which stops it like a first signal and never counts as a second: Ctrl-C in a
terminal signals both processes at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

SIGNALS = (signal.SIGTERM, signal.SIGINT)
LAUNCHER_EXITED = signal.SIGUSR1
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def is_accelerate_launcher(cmdline: list[str]) -> bool:
    """`accelerate launch ...` or `python -m accelerate.commands.launch ...`."""
    names = [os.path.basename(arg) for arg in cmdline]
    return "accelerate.commands.launch" in cmdline or ("accelerate" in names and "launch" in cmdline)


def stop_with_launcher() -> bool:
    """When this process was started by `accelerate launch` (on Linux), have it sent LAUNCHER_EXITED when the
    launcher exits; True if so. A launcher already gone is reported at once."""
    if not sys.platform.startswith("linux"):
        return False
    import psutil

    parent = psutil.Process().parent()
    if parent is None or not is_accelerate_launcher(parent.cmdline()):
        return False
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(LAUNCHER_EXITED), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), LAUNCHER_EXITED)
    return True


class StopOnSignal:
    """Records the first SIGTERM / SIGINT / LAUNCHER_EXITED in `received` (its name); re-raises a second
    SIGTERM / SIGINT, at once or, inside `hold()`, at `release()`."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (*SIGNALS, LAUNCHER_EXITED)):
        self.signals = signals
        self.received: str | None = None
        self.previous: dict[signal.Signals, object] = {}
        self.holding = False
        self.pending: signal.Signals | None = None

    def install(self) -> None:
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def hold(self) -> None:
        """Files are being written: a second signal waits for `release`."""
        self.holding = True

    def release(self) -> None:
        """The files are written: deliver a second signal that came meanwhile."""
        self.holding = False
        if self.pending is not None:
            self._stop_now(self.pending)

    def _handle(self, signum: int, frame) -> None:
        signum = signal.Signals(signum)
        if self.received is None:
            self.received = signum.name
        elif signum == LAUNCHER_EXITED:
            return  # already stopping; the launcher's exit is not a second request
        elif self.holding:
            self.pending = signum
        else:
            self._stop_now(signum)

    def _stop_now(self, signum: signal.Signals) -> None:
        previous = self.previous.get(signum)
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        os.kill(os.getpid(), signum)
