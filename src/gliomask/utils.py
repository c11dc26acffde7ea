"""Small shared helpers: progress bars, JSON writing, environment facts."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Iterable, TypeVar

import numpy as np
from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True,
                 every_s: float = 30.0) -> Iterable[T]:
    """A tqdm bar on a terminal; elsewhere (nohup, SLURM, a pipe) plain lines on stderr, one when an item
    is done and at least ``every_s`` seconds passed since the last line, and one at the end."""
    if not enabled:
        return iter(items)
    if sys.stderr.isatty():
        return tqdm(items, total=total, desc=desc, dynamic_ncols=True)
    return _progress_lines(items, total if total is not None else _len_or_none(items), desc, every_s)


def _len_or_none(items) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None


def _progress_lines(items, total, desc, every_s):
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s or done == total:
            last = now
            of = f"/{total}" if total is not None else ""
            print(f"{desc}: {done}{of} done, {now - start:.0f} s", file=sys.stderr, flush=True)


def write_json(path: str | Path, obj) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    from gliomask.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _cgroup_cpu_limit(root: Path) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers, SLURM).

    ``os.cpu_count()`` counts the machine's CPUs; torch and OpenMP default to about that many threads
    even where a job may use fewer, and oversubscribed threads make training many times slower.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(Path(cgroup_root))
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def default_threads() -> int | None:
    """Threads for torch when the user chose none: the usable CPUs, unless OMP_NUM_THREADS is set."""
    return None if os.environ.get("OMP_NUM_THREADS") else usable_cpus()


def local_cuda_index() -> int:
    """This process's GPU among the visible ones: ``LOCAL_RANK`` (torchrun) modulo the visible GPU count,
    so that one GPU per rank (SLURM's ``--gpus-per-task=1``, CUDA_VISIBLE_DEVICES set per rank: every
    rank sees its own GPU as 0) and all of a node's GPUs visible to every rank both work."""
    import torch

    local = os.environ.get("LOCAL_RANK", "")
    count = torch.cuda.device_count()
    return int(local) % count if local.isdigit() and count else 0


def loader_workers(requested: int | None, device_type: str) -> int:
    """DataLoader workers per training process: ``requested`` when set; else 1 on the CPU (the model step
    needs the cores) and on a GPU the CPUs left to each of the node's processes (``LOCAL_WORLD_SIZE``) less
    one for the process itself, between 1 and 8: one worker feeds about 70 slices/s (bench/loader.py), a
    GPU several hundred."""
    if requested is not None:
        return int(requested)
    if device_type != "cuda":
        return 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, min(8, usable_cpus() // max(local, 1) - 1))


def default_workers() -> int:
    return max(1, min(4, usable_cpus()))


def bounding_box(mask: np.ndarray, pad: int = 1) -> tuple[slice, ...] | None:
    """The box around ``mask``'s voxels, widened by ``pad`` and clipped to the array; None when empty."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(i for i in range(mask.ndim) if i != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return None
        box.append(slice(max(idx[0] - pad, 0), min(idx[-1] + 1 + pad, mask.shape[axis])))
    return tuple(box)
