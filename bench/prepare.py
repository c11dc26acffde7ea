"""Seconds per case of `gliomask prepare` on 240x240x155 four-modality cases, and peak memory.

    python bench/prepare.py [--cases 6] [--workers 1 2]
Goal: <= 2 s per case on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb  # noqa: E402

from gliomask.data.prepare import PrepareSettings, prepare  # noqa: E402
from gliomask.data.synth import synthesize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None, help="folder for the figures as JSON")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        synthesize(tmp / "brats", cases=args.cases, seed=0, workers=min(2, os.cpu_count() or 1))
        synth_s = (time.perf_counter() - t) / args.cases
        for workers in args.workers:
            t = time.perf_counter()
            prepare(tmp / "brats", tmp / f"prep{workers}", PrepareSettings(folds=2), workers=workers, progress=False)
            seconds = time.perf_counter() - t
            rows.append({"workers": workers, "cases": args.cases, "s_per_case": seconds / args.cases,
                         "cases_per_min": 60 * args.cases / seconds,
                         "peak_rss_mb_main": peak_rss_mb(), "peak_rss_mb_worker": peak_rss_mb(children=True)})
    rows.append({"workers": "synth", "cases": args.cases, "s_per_case": synth_s})
    emit("prepare", rows, args.json)


if __name__ == "__main__":
    main()
