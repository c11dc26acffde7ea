"""gliomask's ``--standard brats2024`` against the official BraTS 2024 glioma metrics program.

    python bench/brats2024_reference.py --official PATH/metrics_GLI.py --official-python ENV/bin/python [--cases 3]

PATH/metrics_GLI.py: the official file as it stood for the 2024 challenge, from
github.com/rachitsaluja/BraTS-2024-Metrics (``git show 9a0ab9c:metrics_GLI.py``); it is not part of
gliomask. It needs the libraries of its time: ENV is a virtual environment with ``numpy<2 pandas<2
nibabel connected-components-3d scipy surface-distance``. It runs there unchanged but for two shims:
DeepMind's ``surface-distance`` refuses the integer masks the program passes, so they are cast to bool
(what they mean); and ``DataFrame.replace(np.inf, 337)`` fails in pandas 1.5 on the program's
array-holding column, so it replaces cell by cell (what it means). Synthetic BraTS 2024 cases (with resection cavities), cropped around the tumour to
keep the official program's whole-volume loops short, are scored against perturbed copies of their own
labels. Printed: per case, perturbation and region, both programs' Dice, HD95, lesion-wise Dice and
HD95 and TP/FP/FN (official / gliomask), and the largest difference per figure. Sensitivity and
specificity are left out: the official program computes them on lesion numbers (see
`gliomask.evaluation.brats2024`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from gliomask.data.synth import synthesize
from gliomask.evaluation.evaluate import evaluate_case
from gliomask.io.brats import Case

REGIONS = ("WT", "TC", "NETC", "SNFH", "ET", "RC")
FIGURES = (("Legacy_Dice", "dice"), ("Legacy_HD95", "hd95"), ("LesionWise_Score_Dice", "lesion_dice"),
           ("LesionWise_Score_HD95", "lesion_hd95"), ("Num_TP", "tp"), ("Num_FP", "fp"), ("Num_FN", "fn"))


RUNNER = """
import importlib.util, json, os, sys
import numpy as np, pandas as pd, surface_distance
def _replace(self, to_replace=None, value=None, inplace=False, **kw):  # cells holding arrays broke pandas' own
    out = self.applymap(lambda v: value if isinstance(v, (int, float)) and v == to_replace else v)
    if not inplace:
        return out
    self[:] = out
pd.DataFrame.replace = _replace
original = surface_distance.compute_surface_distances
surface_distance.compute_surface_distances = lambda a, b, s: original(np.asarray(a) > 0, np.asarray(b) > 0, s)
spec = importlib.util.spec_from_file_location("official", sys.argv[1])
official = importlib.util.module_from_spec(spec)
spec.loader.exec_module(official)
out = {}
for work, pred, gt in json.loads(sys.argv[2]):
    os.chdir(work)  # the program writes tmp_gt/ and tmp_pred/ in the working folder
    results, _ = official.get_LesionWiseResults(pred, gt, "BraTS-GLI")
    out[pred] = {r["Labels"]: {k: float(v) for k, v in r.items() if k != "Labels"} for r in results.to_dict("records")}
print(json.dumps(out))
"""


def run_official(python: Path, official: Path, pairs: list[tuple[str, str, str]]) -> dict:
    import json
    import subprocess

    done = subprocess.run([str(python), "-c", RUNNER, str(official), json.dumps(pairs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the official program failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def perturbations(seg: np.ndarray, rng) -> dict[str, np.ndarray]:
    """2024 file labels (0-4) -> named predictions."""
    out = {"identical": seg.copy()}
    out["cavity as ET"] = np.where(seg == 4, 3, seg).astype(seg.dtype)
    shifted = np.roll(seg, 2, axis=0)
    grown = ndimage.binary_dilation(shifted > 0, iterations=1)
    shifted = np.where(grown & (shifted == 0), 2, shifted).astype(seg.dtype)
    shifted[(shifted == 3) & (rng.random(seg.shape) < 0.2)] = 1
    out["shifted, grown, ET partly NETC"] = shifted
    blobs = seg.copy()
    for label, size in ((2, 5), (3, 2), (1, 3), (4, 4), (3, 4)):  # false positives, some below the size limits
        x, y, z = (int(rng.integers(2, n - 8)) for n in seg.shape)
        blobs[x:x + size, y:y + size, z:z + size] = label
    out["false-positive blobs"] = blobs
    eroded = seg.copy()
    eroded[~ndimage.binary_erosion(seg > 0, iterations=2) & (seg > 0)] = 0
    out["eroded by 2"] = eroded
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="metrics_GLI.py of BraTS-2024-Metrics (9a0ab9c)")
    parser.add_argument("--official-python", type=Path, required=True, help="python of an environment with its libraries")
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "brats", cases=args.cases, seed=args.seed, edition="2024")
        pairs, names = [], {}
        for folder in sorted(p for p in (tmp / "brats").iterdir() if p.is_dir()):
            img = nib.load(str(folder / f"{folder.name}-seg.nii.gz"))
            full = np.asarray(img.dataobj).astype(np.uint8)
            nz = np.argwhere(full > 0)
            lo, hi = np.maximum(nz.min(0) - 16, 0), np.minimum(nz.max(0) + 17, full.shape)
            seg = full[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            rng = np.random.default_rng(args.seed)
            for k, (name, pred) in enumerate(perturbations(seg, rng).items()):
                work = tmp / f"{folder.name}_{k}"
                work.mkdir()
                gt_path, pred_path = work / f"gt{k}.nii.gz", work / f"pred{k}.nii.gz"
                nib.save(nib.Nifti1Image(seg, np.eye(4)), str(gt_path))
                nib.save(nib.Nifti1Image(pred.astype(np.uint8), np.eye(4)), str(pred_path))
                pairs.append((str(work), str(pred_path), str(gt_path)))
                names[str(pred_path)] = f"{folder.name} / {name}"
        theirs_all = run_official(args.official_python, args.official.resolve(), pairs)
        for work, pred_path, gt_path in pairs:
            theirs = theirs_all[pred_path]
            ours = evaluate_case(Path(pred_path), Case("gt", {}, Path(gt_path), "brats2023"), "brats2024")
            print(f"\n{names[pred_path]}")
            print(f"{'region':<6}" + "".join(f"{key:>22}" for _, key in FIGURES))
            for region in REGIONS:
                cells = []
                for their_key, our_key in FIGURES:
                    a, b = theirs[region][their_key], float(ours[f"{our_key}_{region}"])
                    cells.append(f"{a:>10.3f} / {b:<9.3f}")
                    diff = abs(a - b)
                    if diff > worst.get(our_key, (0.0, ""))[0]:
                        worst[our_key] = (diff, f"{names[pred_path]} / {region}: official {a:.4f}, gliomask {b:.4f}")
                print(f"{region:<6}" + "".join(f"{c:>22}" for c in cells))
    print("\nlargest difference per figure (official / gliomask):")
    for _, key in FIGURES:
        diff, where = worst.get(key, (0.0, "none"))
        print(f"  {key:<12} {diff:.4g}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
