"""Small shared helpers: progress bars, JSON writing, environment facts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterable[T]:
    """A tqdm bar that switches itself off when stderr is not a terminal or when disabled."""
    return tqdm(items, total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)


def write_json(path: str | Path, obj) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    from gliomask.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
