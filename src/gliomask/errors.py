"""User-facing errors: one line naming the file and the problem, exit code 2."""

from __future__ import annotations

from pathlib import Path


class GliomaskError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class Preempted(GliomaskError):
    """Training stopped by SIGTERM or SIGINT after saving a resumable ``last.pt``: exit code 128 + signal,
    as a shell reports a process ended by that signal, so that a job chain does not go on as if the run
    had finished."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
