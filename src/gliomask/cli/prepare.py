"""`gliomask prepare`: a BraTS folder becomes 2-D training slices."""

from __future__ import annotations

from pathlib import Path

from gliomask.cli.common import FORCE_HELP
from gliomask.utils import default_workers


def register(sub) -> None:
    p = sub.add_parser("prepare", help="turn a BraTS folder into 2-D training slices with instance masks")
    p.add_argument("--brats", required=True, type=Path, help="BraTS folder, case folder or manifest .csv")
    p.add_argument("--out", required=True, type=Path, help="folder to create")
    p.add_argument("--modalities", default="t1,t1ce,t2,flair", help="input channels, in this order")
    p.add_argument("--allow-missing", action="store_true",
                   help="cases may lack some of --modalities (e.g. BraTS 2013's FLAIR + T1ce beside four-modality "
                        "cases): their channels are zero and marked absent; train a model that reads the marks")
    p.add_argument("--axis", choices=["axial", "coronal", "sagittal"], default="axial", help="slicing plane")
    p.add_argument("--scheme", choices=["regions", "labels", "whole"], default="regions",
                   help="instance classes: regions (WT, TC, ET), labels (BraTS labels) or whole (WT only)")
    p.add_argument("--min-area", type=int, default=8, help="smallest 2-D lesion in pixels made an instance")
    p.add_argument("--negatives", type=float, default=0.25, help="share of tumour-free brain slices kept")
    p.add_argument("--folds", type=int, default=5, help="patient-level cross-validation folds")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold split and of the negatives kept")
    p.add_argument("--workers", type=int, default=default_workers(), help="processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.data.prepare import PrepareSettings, prepare

    settings = PrepareSettings(modalities=args.modalities, axis=args.axis, scheme=args.scheme,
                               min_area=args.min_area, negative_fraction=args.negatives,
                               folds=args.folds, seed=args.seed, allow_missing=args.allow_missing)
    meta = prepare(args.brats, args.out, settings, workers=args.workers, progress=not args.quiet, force=args.force)
    n_slices = sum(len(c["slices"]) for c in meta["cases"])
    print(f"prepared {len(meta['cases'])} cases, {n_slices} slices, {len(meta['folds'])} folds "
          f"({', '.join(meta['settings']['modalities'])}; classes {', '.join(meta['classes'])}) in {args.out}")
    edition = meta.get("label_edition", "brats2019")
    cavities = sum(1 for c in meta["cases"] if c.get("cavity_voxels"))
    print(f"labels: {edition}" + (f" (label 4 with 2023-style names is the resection cavity: {cavities} of "
                                  f"{len(meta['cases'])} cases have one; it is not tumour, so no WT/TC/ET instance "
                                  "covers it)" if edition == "brats2024" else ""))
    return 0
