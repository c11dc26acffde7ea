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
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines (train.log still written)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=0.01 model.backbone=resnet18_fpn")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.engine.distributed import cleanup
    from gliomask.engine.train import train

    try:
        train(args.data, args.out, fold=None if args.fold < 0 else args.fold, resume=args.resume,
              overrides=args.overrides, config_file=args.config, command_line=sys.argv, progress=not args.quiet)
    finally:
        cleanup()  # destroy the process group under torchrun (NCCL warns at exit otherwise)
    return 0  # the summary line was printed (stderr) and written to <out>/train.log by the engine
