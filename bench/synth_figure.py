"""The README's picture of a synthetic case: three planes through its tumour, all four modalities.

    python bench/synth_figure.py [--index 3] [--seed 0] [--out docs/synthetic_case.png]

Also prints how long one case takes to generate on this process's threads (torch and numpy).
Planes in radiological convention (patient left on the screen's right), anterior up in the axial view.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "synthetic_case.png")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gliomask.data.synth import synth_case

    synth_case(1, args.seed)  # reads the template once, outside the timing
    t0 = time.perf_counter()
    images, seg = synth_case(args.index, args.seed)
    print(f"one case in {time.perf_counter() - t0:.2f} s (generation only, no writing)")
    centre = np.argwhere(seg > 0).mean(0).round().astype(int) if seg.any() else np.array([120, 130, 75])
    x, y, z = centre
    # Arrays are LPS: x grows to patient left, y to posterior, z to superior.
    planes = [("axial", lambda a: a[:, :, z].T, "upper", ("A", "P", "R", "L")),
              ("coronal", lambda a: a[:, y, :].T, "lower", ("S", "I", "R", "L")),
              ("sagittal", lambda a: a[x, :, :].T, "lower", ("S", "I", "A", "P"))]
    names = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}
    fig, axes = plt.subplots(3, 5, figsize=(15, 9.6), facecolor="black")
    for row, (plane, cut, origin, (top, bottom, left, right)) in enumerate(planes):
        for col, mod in enumerate([*names, "seg"]):
            ax = axes[row, col]
            if mod == "seg":
                base = cut(images["flair"]).astype(float)
                ax.imshow(base, cmap="gray", origin=origin, vmax=np.percentile(images["flair"][images["flair"] > 0], 99.5))
                lab = cut(seg)
                colours = np.zeros(lab.shape + (4,))
                for value, rgb in ((2, (0.0, 0.62, 0.45)), (1, (0.9, 0.62, 0.0)), (4, (0.8, 0.2, 0.55))):
                    colours[lab == value] = (*rgb, 0.55)  # oedema, necrotic/non-enhancing core, enhancing
                ax.imshow(colours, origin=origin)
                title = "labels: oedema, core, enhancing"
            else:
                img = images[mod]
                ax.imshow(cut(img), cmap="gray", origin=origin, vmin=0, vmax=np.percentile(img[img > 0], 99.5))
                title = names[mod]
            ax.set_title(f"{title} ({plane})", color="white", fontsize=9)
            ax.axis("off")
            for text, xy in ((top, (0.5, 0.97)), (bottom, (0.5, 0.02)), (left, (0.02, 0.5)), (right, (0.97, 0.5))):
                ax.text(*xy, text, color="yellow", fontsize=9, ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"synthetic case {args.index} (seed {args.seed}) on the MNI ICBM152 template", color="white")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80, facecolor="black")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
