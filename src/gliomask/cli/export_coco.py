"""`gliomask export-coco`: a COCO JSON of a prepared split."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("export-coco", help="write a COCO JSON of a prepared split")
    p.add_argument("--data", required=True, type=Path, help="folder written by `gliomask prepare`")
    p.add_argument("--out", required=True, type=Path, help="COCO JSON file to write")
    p.add_argument("--fold", type=int, default=None, help="fold whose train or val split to export (default: none)")
    p.add_argument("--split", choices=["train", "val", "all"], default="all", help="which slices to export")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.data.coco import export_coco

    path = export_coco(args.data, args.out, fold=args.fold, split=args.split)
    print(f"wrote {path}")
    return 0
