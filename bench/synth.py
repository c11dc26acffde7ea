"""Seconds per case of `gliomask synth` on one core, as a user runs it (start-up included).

    python bench/synth.py [--cases 8 16] [--anatomy mni simple]
Goal: <= 2 s per case on one core (issue 9). The command runs pinned to one CPU (``taskset`` where the
platform has it, else ``os.sched_setaffinity``) with OMP_NUM_THREADS=1; "further_s_per_case" is the
difference between the two largest counts divided by their difference: the cost of one more case once
torch and the template are loaded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def time_synth(cases: int, anatomy: str, folder: Path) -> float:
    cmd = [sys.executable, "-m", "gliomask", "synth", "--cases", str(cases), "--workers", "1",
           "--anatomy", anatomy, "--out", str(folder)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, preexec_fn=_one_core, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--anatomy", nargs="+", default=["mni", "simple"])
    ap.add_argument("--json", default=None, help="folder for the figures as JSON")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for anatomy in args.anatomy:
            walls = {}
            for n in sorted(args.cases):
                walls[n] = time_synth(n, anatomy, Path(tmp) / f"{anatomy}{n}")
                rows.append({"anatomy": anatomy, "cases": n, "wall_s": walls[n], "s_per_case": walls[n] / n})
            if len(walls) > 1:
                a, b = sorted(walls)[-2:]
                rows.append({"anatomy": anatomy, "cases": f"{a}->{b}",
                             "further_s_per_case": (walls[b] - walls[a]) / (b - a)})
    emit("synth", rows, args.json)


if __name__ == "__main__":
    main()
