"""Seconds per volume of one checkpoint on each device, with and without mixed precision, and how much
the label maps differ (Dice of AMP against fp32 per region).

    python bench/predict_devices.py CHECKPOINT CASE_FOLDER [--devices cuda cpu] [--repeats 3]

The first prediction on a device is a warm-up (CUDA context, cuDNN autotuning) and is not timed. Used
by bench/gpu_smoke.sh; on a machine without CUDA only the CPU rows appear.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("case", type=Path)
    ap.add_argument("--devices", nargs="+", default=["cuda", "cpu"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from gliomask.evaluation.metrics import dice
    from gliomask.inference.predictor import Predictor
    from gliomask.io.brats import discover_cases

    case = discover_cases(args.case)[0]
    rows, reference = [], None
    for device in args.devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skipped {device}: CUDA is not available")
            continue
        for amp in ([False, True] if device.startswith("cuda") else [False]):
            predictor = Predictor.from_checkpoint(args.checkpoint, device=device)
            predictor.amp = amp and predictor.device.type == "cuda"  # predict --amp
            loaded = predictor.load(case)
            predictor.predict_case(loaded)  # warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = predictor.predict_case(loaded)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            if reference is None:
                reference = result.regions
            agreement = [dice(result.regions[r], reference[r]) for r in range(3)]
            rows.append({"device": device, "amp": amp, "s / volume": round(min(times), 3),
                         "GPU peak MB": round(torch.cuda.max_memory_allocated() / 2 ** 20) if device.startswith("cuda") else "-",
                         "threads": torch.get_num_threads(),
                         "Dice vs first row WT/TC/ET": "/".join(f"{d:.3f}" for d in agreement)})
            print(rows[-1], flush=True)
    emit("predict_devices", rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
