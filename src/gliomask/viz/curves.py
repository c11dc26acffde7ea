"""Loss and validation curves of a run, as one PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gliomask.viz.figure import save_figure  # noqa: E402
from gliomask.viz.palette import REGION_COLOURS, SERIES  # noqa: E402


def plot_curves(metrics_jsonl: Path, out_png: Path) -> Path | None:
    path = Path(metrics_jsonl)
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [r for r in records if r["type"] == "train"]
    val = [r for r in records if r["type"] == "val"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        steps = [r["step"] for r in train]
        axes[0].plot(steps, [r["loss"] for r in train], label="total", color=SERIES[0], linewidth=1.8)
        for colour, key in zip(SERIES[1:], sorted(k for k in train[0] if k.startswith("loss_"))):
            axes[0].plot(steps, [r[key] for r in train], label=key[5:], color=colour, linewidth=1.2)
        axes[0].set_yscale("log")
        axes[0].set_xlabel("step")
        axes[0].set_title("training loss")
        axes[0].legend(fontsize=7)
    for k, name in enumerate(("WT", "TC", "ET")):
        if val:
            xs, ys = [r["step"] for r in val], [r[f"dice_{name}"] for r in val]
            axes[1].plot(xs, ys, marker="o", label=name, color=REGION_COLOURS[name], markeredgecolor=SERIES[0])
            if len(val) <= 2:  # a run that validated once or twice: say the values, a line says little
                for x, y in zip(xs, ys):
                    axes[1].annotate(f"{name} {y:.2f}", (x, y), textcoords="offset points", xytext=(-8, 10 - 11 * k),
                                     ha="right", fontsize=7)
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("step")
    axes[1].set_title(f"validation Dice (volumes; {len(val)} validation{'s' if len(val) != 1 else ''})")
    if val:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=100)
