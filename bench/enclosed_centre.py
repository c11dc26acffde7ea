"""Before / after picture of the enclosed-centre rule (``infer.fill_holes``) on a held-out real patient.

    python bench/enclosed_centre.py CHECKPOINT CASE_FOLDER [--out docs/enclosed_centre.png]

Predicts the case with the checkpoint twice, with the rule off and on (nothing else differs), prints
the Dice per region of both against the case's ground truth, and draws both overlays (prediction and
truth) one above the other. Use a checkpoint whose training patients exclude the case: bench/real.py
leaves one per fold (``bench/out/real/fold<k>/best.pt``, the fold's held-out patients in
``real_cv_settings.json``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("case", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/enclosed_centre.png"))
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gliomask.evaluation.metrics import dice
    from gliomask.inference.predictor import Predictor
    from gliomask.io.brats import discover_cases, load_case
    from gliomask.labels import regions_from_labels
    from gliomask.viz.overlay import save_overlay

    case = discover_cases(args.case)[0]
    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    loaded = load_case(case, predictor.modalities, allow_missing=True)
    truth = regions_from_labels(loaded.seg)
    images = {m: loaded.images[i] for i, m in enumerate(loaded.modalities) if m in loaded.present}
    pictures = []
    for fill in (False, True):
        predictor.post = replace(predictor.post, fill_holes=fill)
        result = predictor.predict_case(loaded)
        scores = [dice(result.regions[r], truth[r]) for r in range(3)]
        label = f"enclosed centres {'filled' if fill else 'as predicted'}"
        print(f"{case.case_id} {label}: Dice WT {scores[0]:.3f} TC {scores[1]:.3f} ET {scores[2]:.3f}; "
              f"TC {int(result.regions[1].sum())} voxels (truth {int(truth[1].sum())})")
        png = args.out.with_name(f"{args.out.stem}_{'after' if fill else 'before'}.png")
        save_overlay(images, png, affine=loaded.affine, pred=result.labels, gt=loaded.seg, max_lesions=1,
                     title=f"{case.case_id}: {label} (TC Dice {scores[1]:.2f})")
        pictures.append(png)
    tiles = [plt.imread(str(p)) for p in pictures]
    width = max(t.shape[1] for t in tiles)
    stacked = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=1) for t in tiles])
    plt.imsave(str(args.out), stacked)
    for p in pictures:
        p.unlink()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
