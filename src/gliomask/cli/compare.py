"""`gliomask compare`: one patient's timepoints, lesion by lesion, with the imaging part of RANO 2.0."""

from __future__ import annotations

from pathlib import Path

from gliomask.followup.match import DEFAULT_TOLERANCE_MM


def register(sub) -> None:
    p = sub.add_parser("compare", help="follow one patient's lesions over two or more timepoints",
                       description="Compare two or more timepoints of one patient: lesions matched over time, "
                                   "volumes and RANO diameters, changes from baseline and nadir, and the imaging "
                                   "component of the RANO 2.0 response per follow-up. Timepoints on different grids "
                                   "are registered rigidly onto the first.")
    p.add_argument("timepoints", nargs="+", type=Path,
                   help="in time order: case folders (need -m), label maps, or predict output folders")
    p.add_argument("-o", "--out", required=True, type=Path,
                   help="folder to create: compare.json, compare.csv, compare.html, pictures")
    p.add_argument("-m", "--model", type=Path, default=None, help="checkpoint that predicts case folders")
    p.add_argument("--tolerance-mm", type=float, default=DEFAULT_TOLERANCE_MM,
                   help="lesions that do not overlap are matched when their centroids lie this close")
    p.add_argument("--device", default="auto", help="for -m: auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (registration and prediction)")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.errors import GliomaskError
    from gliomask.followup.compare import check_inputs, compare, load_timepoint
    from gliomask.followup.report import write_outputs

    check_inputs(args.timepoints)
    if args.tolerance_mm < 0:
        raise GliomaskError(f"--tolerance-mm must be at least 0, got {args.tolerance_mm}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise GliomaskError("output exists and is not an empty folder", args.out)
    predictor = None
    if args.model is not None:
        from gliomask.inference.predictor import Predictor

        predictor = Predictor.from_checkpoint(args.model, device=args.device)
    timepoints = [load_timepoint(path, predictor) for path in args.timepoints]
    report, labels, scans, components = compare(timepoints, tolerance_mm=args.tolerance_mm, threads=args.threads)
    if args.out.exists():
        args.out.rmdir()
    import nibabel as nib

    write_outputs(args.out, report, labels, scans, nib.load(str(timepoints[0].grid)).affine, components)
    for f in report["followups"]:
        print(f"{f['name']}: bidimensional {f['bidimensional']['category']} ({f['bidimensional']['because']}); "
              f"volumetric {f['volumetric']['category']} ({f['volumetric']['because']}); "
              f"new {', '.join(f['new']) or '-'}; resolved {', '.join(f['resolved']) or '-'}")
    print(f"wrote {args.out / 'compare.html'}")
    return 0
