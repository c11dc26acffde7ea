"""`gliomask predict`: label maps, lesion reports and overlays for new cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from gliomask.cli.common import FORCE_HELP, fold_cases


def register(sub) -> None:
    p = sub.add_parser("predict", help="label maps, lesion reports and overlays for new cases")
    p.add_argument("-i", "--input", type=Path, default=None,
                   help="case folder, BraTS folder, nnU-Net images folder (with dataset.json) or manifest .csv")
    for mod in ("t1", "t1ce", "t2", "flair"):
        p.add_argument(f"--{mod}", type=Path, default=None, metavar="FILE",
                       help=f"instead of -i: the {mod.upper()} file of one case (give each modality the model needs)")
    p.add_argument("--case-id", default=None, help="with --t1/--t1ce/--t2/--flair: the case id for the output names "
                                                   "(default: the first file's name without its modality suffix)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder (must not hold the inputs)")
    p.add_argument("-m", "--model", required=True, type=Path, nargs="+", metavar="MODEL",
                   help="checkpoint (best.pt) or ONNX export (model.onnx); several (e.g. one per fold) predict as an "
                        "ensemble: their probabilities averaged, the first one's post-processing")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="torch, or onnx (onnxruntime, CPU; pip install gliomask[onnx]); auto: onnx for a .onnx file (default)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation: each slice also predicted flipped left-right, the two averaged "
                        "(default: the checkpoint's infer.tta, on; --no-tta predicts ~1.4x faster)")
    p.add_argument("--amp", action="store_true",
                   help="float16 autocast on a GPU: faster; the post-processing was chosen on float32 outputs (default off)")
    p.add_argument("--whole-tumour-from", default=None, metavar="flair,t1ce|all",
                   help="the whole tumour from a second pass that sees only these modalities when a case has more "
                        "(default: the checkpoint's infer.whole_tumour_modalities, flair,t1ce, when some of its "
                        "training patients had just those); all: one pass")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: the CPUs this process may use, from affinity and cgroup quota)")
    p.add_argument("--labels", choices=["auto", "brats2019", "brats2023", "brats2024"], default="auto",
                   help="label convention of the output: auto follows each input case's naming, and 2023-style "
                        "names become brats2024 when a resection cavity is predicted (default); brats2019: "
                        "enhancing 4; brats2023: enhancing 3; brats2024: enhancing 3, resection cavity 4")
    p.add_argument("--no-overlays", action="store_true",
                   help="skip <case>_overlay.png and <case>_report.html (default: write them)")
    p.add_argument("--lesion-frame", choices=["ras", "lps"], default="ras",
                   help="frame of the lesion tables' mm columns: ras = NIfTI scanner RAS+ (default), lps = DICOM/ITK")
    p.add_argument("--planes", default=None, metavar="axial,coronal,sagittal",
                   help="fuse region probabilities over these of the checkpoint's trained planes (default: all it was trained on)")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <case>_prob.nii.gz (WT, TC, ET) and uncertainty maps <case>_unc_{whole,core,enhance}.nii.gz")
    p.add_argument("--fold-of", type=Path, default=None, metavar="PREPARED",
                   help="only the validation patients of --fold in this prepared folder")
    p.add_argument("--fold", type=int, default=0, help="fold for --fold-of (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (per-case lines still print)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.errors import GliomaskError
    from gliomask.inference.predict import predict_cases
    from gliomask.io.brats import case_from_files

    def report(r) -> None:  # one line per case as it is done, not all at the end (batch logs)
        print(f"{r['case']}: {r['lesions']} lesion(s), {r['volume_ml']:.1f} mL -> {r['seg']}", flush=True)

    files = {m: getattr(args, m) for m in ("t1", "t1ce", "t2", "flair") if getattr(args, m) is not None}
    if bool(files) == (args.input is not None):
        raise GliomaskError("give either -i (a folder or manifest) or the files of one case (--t1 --t1ce --t2 --flair)")
    inputs = case_from_files(files, args.case_id) if files else args.input
    wt_from = None if args.whole_tumour_from is None else [] if args.whole_tumour_from == "all" \
        else [m.strip() for m in args.whole_tumour_from.split(",") if m.strip()]
    predict_cases(inputs, args.output, args.model, device=args.device, tta=args.tta, amp=args.amp,
                  whole_tumour_modalities=wt_from,
                  threads=args.threads, convention=args.labels, overlays=not args.no_overlays,
                  progress=not args.quiet, case_ids=fold_cases(args), probabilities=args.save_probabilities,
                  planes=args.planes.split(",") if args.planes else None, backend=args.backend,
                  lesion_frame=args.lesion_frame, on_case=report, force=args.force)
    return 0
