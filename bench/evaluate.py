"""Seconds per full-size (240 x 240 x 155) case for `gliomask evaluate`, one core.

    OMP_NUM_THREADS=1 python bench/evaluate.py [--cases 4] [--standard brats2023]
Synthetic BraTS cases are scored against perturbed copies of their own labels (dilated, shifted, with
a false-positive blob and enhancing relabelled as core in part), so that every metric has work to do.
Goal: at most 1 s per case on one core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

from gliomask.data.synth import synthesize  # noqa: E402
from gliomask.evaluation.evaluate import evaluate_case  # noqa: E402
from gliomask.io.brats import discover_cases  # noqa: E402


def perturbed(seg: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.roll(seg, 2, axis=0)
    wt = ndimage.binary_dilation(out > 0, iterations=1)
    out = np.where(wt & (out == 0), 2, out).astype(np.uint8)
    out[(out == 4) & (rng.random(out.shape) < 0.2)] = 1
    x, y, z = (int(v) for v in rng.integers(40, 100, 3))
    out[x:x + 6, y:y + 6, z:z + 6] = 2  # a false-positive lesion
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--standard", default="brats2023", choices=["brats2023", "legacy"])
    ap.add_argument("--json", default=None, help="folder for evaluate.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "brats"
        synthesize(root, cases=args.cases, seed=11, workers=1, progress=False)
        cases = [c for c in discover_cases(root) if c.seg is not None]
        rows = []
        for i, case in enumerate(cases):
            ref = nib.load(case.seg)
            seg = np.asarray(ref.dataobj).astype(np.uint8)
            pred_path = Path(tmp) / f"{case.case_id}_seg.nii.gz"
            nib.save(nib.Nifti1Image(perturbed(seg, i), ref.affine, ref.header), str(pred_path))
            t0 = time.perf_counter()
            row = evaluate_case(pred_path, case, args.standard)
            seconds = time.perf_counter() - t0
            rows.append({"case": case.case_id, "standard": args.standard, "shape": "x".join(map(str, seg.shape)),
                         "tumour voxels": int((seg > 0).sum()), "seconds": round(seconds, 3),
                         "Dice WT": round(row["dice_WT"], 3)})
    emit("evaluate", rows, args.json)
    mean = float(np.mean([r["seconds"] for r in rows]))
    print(f"\nmean {mean:.3f} s per case (goal <= 1 s on one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
