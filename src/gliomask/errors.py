"""User-facing errors: one line naming the file and the problem, exit code 2."""

from __future__ import annotations

from pathlib import Path


class GliomaskError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
