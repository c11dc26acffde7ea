"""`gliomask train`: CPU, GPU or torchrun DDP."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train", help="train Mask R-CNN on a prepared folder (CPU, GPU, or torchrun DDP)")
    p.add_argument("--data", required=True, type=Path, help="folder written by `gliomask prepare`")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--fold", type=int, default=0, help="validation fold; -1 trains on every case")
    p.add_argument("--config", type=Path, default=None, help="YAML file of settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=0.01 model.backbone=resnet18_fpn")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.engine.train import train

    summary = train(args.data, args.out, fold=None if args.fold < 0 else args.fold, resume=args.resume,
                    overrides=args.overrides, config_file=args.config, command_line=sys.argv,
                    progress=not args.quiet)
    val = summary.get("validation") or {}
    line = (f"trained {summary['epochs_done']} epochs, {summary['steps']} steps in {summary['train_seconds'] / 60:.1f} min "
            f"({summary['seconds'] / 60:.1f} min with validation)")
    if val:
        line += f"; validation Dice WT {val['dice_WT']:.3f} TC {val['dice_TC']:.3f} ET {val['dice_ET']:.3f}"
    print(f"{line}; checkpoints in {args.out}")
    return 0
