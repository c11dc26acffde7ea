"""Before / after picture of the CPU recipe's tumour-core cut-off (0.5 -> 0.3) on stored held-out outputs:

    python bench/tc_cutoff_figure.py     # needs bench/out/real_v2/outputs_fold<k>.npz from bench/real.py

Two patients, the slice with the most reference core: TC probability (grey), reference TC (green),
predicted TC (red); writes docs/results/tc_cutoff_before_after.png.
"""
import sys
from dataclasses import replace
from pathlib import Path
import numpy as np
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import real
from gliomask.config import load_config
from gliomask.evaluation.metrics import dice
from gliomask.inference.core import PostProcessing, regions_from_probabilities
cfg = load_config(ROOT / "configs" / "cpu_light.yaml", [])
new = PostProcessing.from_config(cfg.infer)
old = replace(new, region_thresholds=(new.region_thresholds[0], 0.5, new.region_thresholds[2]))  # TC only
outs = {}
for k in range(3):
    outs.update(real.load_outputs(ROOT / "bench" / "out" / "real_v2" / f"outputs_fold{k}.npz"))
fig, axes = plt.subplots(2, 2, figsize=(10, 10))
for row, cid in enumerate(["BraTS2021_01478", "BRATS13_pat0002"]):
    p, s, ref = real.as_float32(outs[cid]["own"][:3])
    a = regions_from_probabilities(p, s, old); b = regions_from_probabilities(p, s, new)
    z = int(np.argmax(ref[1].sum(axis=(1, 2))))  # axis 0 of the crop: the slice with most reference core
    for col, (pred, name) in enumerate([(a, "TC cut-off 0.5"), (b, "TC cut-off 0.3")]):
        ax = axes[row, col]
        ax.imshow(p[1][z], cmap="gray", vmin=0, vmax=1)
        ax.contour(ref[1][z], levels=[0.5], colors="lime", linewidths=1.5)
        ax.contour(pred[1][z], levels=[0.5], colors="red", linewidths=1.5)
        d = dice(pred[1], ref[1])
        ax.set_title(f"{cid} {name}: TC Dice {d:.2f} (3-D)"); ax.axis("off")
fig.suptitle("run 2 fold models, TTA: TC probability (grey), reference TC (green), predicted TC (red)")
fig.tight_layout(); fig.savefig(ROOT / "docs" / "results" / "tc_cutoff_before_after.png", dpi=80)
print("ok")
