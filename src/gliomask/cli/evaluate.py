"""`gliomask evaluate`: BraTS metrics, lesion detection and COCO AP."""

from __future__ import annotations

import sys

from pathlib import Path

from gliomask.cli.common import fold_cases


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="BraTS metrics of predictions against ground truth")
    p.add_argument("--pred", required=True, type=Path, help="folder of <case>_seg.nii.gz")
    p.add_argument("--gt", required=True, type=Path, help="BraTS folder with ground-truth segmentations")
    p.add_argument("-o", "--output", type=Path, default=None, help="folder for metrics.csv, summary.json, index.html")
    p.add_argument("--standard", choices=["auto", "brats2023", "brats2024", "legacy"], default="auto",
                   help="auto (default): brats2024 when a reference holds the 2024 resection cavity (label 4 with "
                        "2023-style names), else brats2023; brats2023: the BraTS 2023 official code; brats2024: "
                        "the BraTS 2024 post-treatment code (adds NETC, SNFH, RC); legacy: BraTS 2018-2021 as "
                        "brats-evaluation computes it")
    p.add_argument("--coco", type=Path, default=None, help="prepared folder: also compute slice-level COCO AP")
    p.add_argument("--fold", type=int, default=0, help="fold for --coco and --fold-of")
    p.add_argument("--fold-of", type=Path, default=None, metavar="PREPARED",
                   help="only the validation patients of --fold in this prepared folder")
    p.add_argument("-m", "--model", type=Path, default=None, help="checkpoint for --coco")
    p.add_argument("--device", default="auto", help="for --coco: auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--workers", type=int, default=2, help="processes computing metrics")
    p.add_argument("--no-report", action="store_true", help="skip overlays and index.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.evaluation.evaluate import evaluate_folders, format_table, refuse_output_among_inputs

    if args.output is not None:  # checked before any work
        refuse_output_among_inputs(args.output, args.pred, args.gt)

    rows, summary = evaluate_folders(args.pred, args.gt, None, workers=args.workers, progress=not args.quiet,
                                     case_ids=fold_cases(args), standard=args.standard)
    if args.coco is not None:
        from gliomask.evaluation.coco_eval import coco_ap_for_checkpoint

        summary["coco"] = coco_ap_for_checkpoint(args.coco, args.fold, args.model, device=args.device)
    if args.output is not None:
        from gliomask.evaluation.evaluate import write_results

        write_results(rows, summary, args.output)
        if args.no_report:  # a report left by an earlier run would describe other figures than these
            from gliomask.evaluation.report_run import remove_report

            removed = remove_report(args.output)
            if removed:
                print(f"gliomask: removed the earlier report in {args.output} ({', '.join(removed)}): "
                      "--no-report writes none", file=sys.stderr)
        else:
            from gliomask.evaluation.report_run import write_visual_report

            write_visual_report(args.pred, args.gt, args.output, rows, summary)
    print(format_table(summary))
    if "coco" in summary:
        print("COCO " + ", ".join(f"{k} {v:.3f}" for k, v in summary["coco"].items()))
    if args.output is not None:
        print(f"per-case metrics, summary.json{'' if args.no_report else ' and index.html'} in {args.output}")
    return 0
