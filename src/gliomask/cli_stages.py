"""Sub-commands for training, prediction, evaluation and the demo."""

from __future__ import annotations

import sys
from pathlib import Path


def _cmd_train(args) -> int:
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


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train Mask R-CNN on a prepared folder (CPU, GPU, or torchrun DDP)")
    p.add_argument("--data", required=True, type=Path, help="folder written by `gliomask prepare`")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--fold", type=int, default=0, help="validation fold; -1 trains on every case")
    p.add_argument("--config", type=Path, default=None, help="YAML file of settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=0.01 model.backbone=resnet18_fpn")
    p.set_defaults(func=_cmd_train)
    add_inference_commands(sub)
    add_demo_command(sub)


def _cmd_predict(args) -> int:
    from gliomask.inference.predict import predict_cases

    results = predict_cases(args.input, args.output, args.model, device=args.device, tta=args.tta,
                            threads=args.threads, convention=args.labels, overlays=not args.no_overlays,
                            progress=not args.quiet, case_ids=_fold_cases(args), probabilities=args.save_probabilities,
                            planes=args.planes.split(",") if args.planes else None)
    for r in results:
        print(f"{r['case']}: {r['lesions']} lesion(s), {r['volume_ml']:.1f} mL -> {r['seg']}")
    return 0


def _cmd_evaluate(args) -> int:
    from gliomask.evaluation.evaluate import evaluate_folders, format_table

    rows, summary = evaluate_folders(args.pred, args.gt, None, workers=args.workers, progress=not args.quiet,
                                     case_ids=_fold_cases(args), standard=args.standard)
    if args.coco is not None:
        from gliomask.evaluation.coco_eval import coco_ap_for_checkpoint

        summary["coco"] = coco_ap_for_checkpoint(args.coco, args.fold, args.model, device=args.device)
    if args.output is not None:
        from gliomask.evaluation.evaluate import write_results

        write_results(rows, summary, args.output)
        if not args.no_report:
            from gliomask.evaluation.report_run import write_visual_report

            write_visual_report(args.pred, args.gt, args.output, rows, summary)
    print(format_table(summary))
    if "coco" in summary:
        print("COCO " + ", ".join(f"{k} {v:.3f}" for k, v in summary["coco"].items()))
    if args.output is not None:
        print(f"per-case metrics, summary.json{'' if args.no_report else ' and index.html'} in {args.output}")
    return 0


def _fold_cases(args):
    """The validation patients of ``--fold`` in ``--fold-of PREPARED``, or None for every case."""
    if args.fold_of is None:
        return None
    from gliomask.data.prepare import Prepared

    return Prepared.open(args.fold_of).split(args.fold)[1]


def add_inference_commands(sub) -> None:
    p = sub.add_parser("predict", help="label maps, lesion reports and overlays for new cases")
    p.add_argument("-i", "--input", required=True, type=Path, help="case folder, BraTS folder or manifest .csv")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("-m", "--model", required=True, type=Path, help="checkpoint (best.pt)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--labels", choices=["brats2019", "brats2023"], default="brats2019",
                   help="label convention of the output (2019: enhancing 4; 2023: enhancing 3)")
    p.add_argument("--no-overlays", action="store_true")
    p.add_argument("--planes", default=None, metavar="axial,coronal,sagittal",
                   help="fuse region probabilities over these of the checkpoint's trained planes (default: all it was trained on)")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <case>_prob.nii.gz (WT, TC, ET) and uncertainty maps <case>_unc_{whole,core,enhance}.nii.gz")
    p.add_argument("--fold-of", type=Path, default=None, metavar="PREPARED",
                   help="only the validation patients of --fold in this prepared folder")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="BraTS metrics of predictions against ground truth")
    p.add_argument("--pred", required=True, type=Path, help="folder of <case>_seg.nii.gz")
    p.add_argument("--gt", required=True, type=Path, help="BraTS folder with ground-truth segmentations")
    p.add_argument("-o", "--output", type=Path, default=None, help="folder for metrics.csv, summary.json, index.html")
    p.add_argument("--standard", choices=["brats2023", "legacy"], default="brats2023",
                   help="brats2023: the BraTS 2023+ official code (default); legacy: BraTS 2018-2021 as brats-evaluation computes it")
    p.add_argument("--coco", type=Path, default=None, help="prepared folder: also compute slice-level COCO AP")
    p.add_argument("--fold", type=int, default=0, help="fold for --coco and --fold-of")
    p.add_argument("--fold-of", type=Path, default=None, metavar="PREPARED",
                   help="only the validation patients of --fold in this prepared folder")
    p.add_argument("-m", "--model", type=Path, default=None, help="checkpoint for --coco")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-report", action="store_true", help="skip overlays and index.html")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_demo(args) -> int:
    from gliomask.demo import run_demo

    run_demo(args.out, minutes=args.minutes, cases=args.cases, test_cases=args.test_cases, seed=args.seed,
             device=args.device, overrides=args.overrides, fresh=args.fresh, progress=not args.quiet)
    return 0


def add_demo_command(sub) -> None:
    p = sub.add_parser("demo", help="synthesise, prepare, train, predict, evaluate and report, end to end")
    p.add_argument("--out", type=Path, default=Path("demo_out"))
    p.add_argument("--minutes", type=float, default=None, help="training budget (default 7 on CPU, 2 on GPU)")
    p.add_argument("--cases", type=int, default=24, help="synthetic training cases")
    p.add_argument("--test-cases", type=int, default=6, help="held-out synthetic cases evaluated at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--fresh", action="store_true", help="replace an existing demo folder")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides")
    p.set_defaults(func=_cmd_demo)
