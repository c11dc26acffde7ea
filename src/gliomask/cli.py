"""Command line: a thin layer over the Python API. Every user error is one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gliomask import __version__
from gliomask.errors import GliomaskError
from gliomask.utils import default_workers


def _cmd_synth(args) -> int:
    from gliomask.data.synth import synthesize

    ids = synthesize(args.out, cases=args.cases, seed=args.seed, edition=args.edition,
                     workers=args.workers, progress=not args.quiet)
    print(f"wrote {len(ids)} synthetic BraTS {args.edition} cases to {args.out}")
    return 0


def _cmd_prepare(args) -> int:
    from gliomask.data.prepare import PrepareSettings, prepare

    settings = PrepareSettings(modalities=args.modalities, axis=args.axis, scheme=args.scheme,
                               min_area=args.min_area, negative_fraction=args.negatives,
                               folds=args.folds, seed=args.seed)
    meta = prepare(args.brats, args.out, settings, workers=args.workers, progress=not args.quiet)
    n_slices = sum(len(c["slices"]) for c in meta["cases"])
    print(f"prepared {len(meta['cases'])} cases, {n_slices} slices, {len(meta['folds'])} folds "
          f"({', '.join(meta['settings']['modalities'])}; classes {', '.join(meta['classes'])}) in {args.out}")
    return 0


def _cmd_export_coco(args) -> int:
    from gliomask.data.coco import export_coco

    path = export_coco(args.data, args.out, fold=args.fold, split=args.split)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gliomask", description="Find and outline brain tumours in multimodal MRI (BraTS) with Mask R-CNN.")
    parser.add_argument("--version", action="version", version=f"gliomask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write synthetic BraTS-like cases in the BraTS folder layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--edition", choices=["2019", "2023"], default="2019")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("prepare", help="turn a BraTS folder into 2-D training slices with instance masks")
    p.add_argument("--brats", required=True, type=Path, help="BraTS folder, case folder or manifest .csv")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--modalities", default="t1,t1ce,t2,flair")
    p.add_argument("--axis", choices=["axial", "coronal", "sagittal"], default="axial")
    p.add_argument("--scheme", choices=["regions", "labels", "whole"], default="regions")
    p.add_argument("--min-area", type=int, default=8, help="smallest 2-D lesion in pixels made an instance")
    p.add_argument("--negatives", type=float, default=0.25, help="share of tumour-free brain slices kept")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("export-coco", help="write a COCO JSON of a prepared split")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--fold", type=int, default=None)
    p.add_argument("--split", choices=["train", "val", "all"], default="all")
    p.set_defaults(func=_cmd_export_coco)

    _add_later_commands(sub)
    return parser


def _add_later_commands(sub) -> None:
    """Commands of the later pipeline stages (train, predict, evaluate, demo)."""
    from gliomask import cli_stages

    cli_stages.add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GliomaskError as exc:
        print(f"gliomask: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gliomask: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
