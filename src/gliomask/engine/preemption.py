"""SIGTERM and SIGINT during training: how SLURM, Kubernetes and a user's Ctrl-C stop a run.

The signal is only noted; the training loop acts on it at the next step boundary, when the model,
optimiser, schedule and random streams are consistent: it saves a resumable ``last.pt`` (the epoch in
progress and the steps done of it) and stops with `gliomask.errors.Preempted`. A second Ctrl-C
stops at once, as Python does by default. Under torchrun the ranks agree on the step to stop at.
"""

from __future__ import annotations

import signal
import threading

from gliomask.engine import distributed as dist_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """A context manager that notes SIGTERM / SIGINT instead of dying; ``agreed`` polls it."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _note(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def agreed(self, device) -> int | None:
        """The signal to stop for, the same on every rank (any rank's), or None to go on."""
        value = dist_utils.all_reduce_max(float(self.signum or 0), device)
        return int(value) or None


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a worker leaves SIGTERM / SIGINT to the training process, which stops
    them itself after saving (SLURM signals every process of a job step, a terminal its process group)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
