"""Atomic files and folders: written under a temporary name beside the target, renamed on success,
removed on failure, so that no half-written output ever carries the final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from gliomask.errors import GliomaskError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffixes); on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp_path, path)
    except OSError as exc:
        # a short write on a full disk names no file, or the temporary one: name the output
        if exc.errno is not None and exc.filename in (None, str(tmp_path), tmp_path):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_output_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path``.

    ``path`` must not exist yet. On any error the temporary folder is removed, so no half-written
    output is ever left under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to a log file, refusing a symbolic link (a planted link must not redirect a log).

    Raises OSError (ELOOP) on a link, which the CLI reports as one line.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "a") as fh:
        fh.write(text)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` leaves when a process is killed mid-save.

    Only names of its own pattern (``.<name>.<random>.tmp<suffixes>``) are touched. Call it where no
    other process writes into ``folder`` (a run folder at the start of training). Returns what went.
    """
    gone = []
    for tmp in sorted(Path(folder).glob(".*.tmp*")):
        if tmp.is_file() and not tmp.is_symlink() and ".tmp" in tmp.name[1:]:
            tmp.unlink()
            gone.append(tmp)
    return gone


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` whose short write (a full disk, a quota) is one error naming the file.

    NumPy reports a short write as a bare OSError ("N requested and M written") with no errno or file.
    """
    try:
        np.save(path, array)
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise GliomaskError(f"cannot write it ({exc}): is the disk full or over quota?", path) from None
