"""Transfer from synthetic to real: train on synthetic cases only, score on the four real patients.

    python bench/transfer.py [--anatomy mni simple] [--cases 24] [--minutes 7] [--out bench/out/transfer]

The demo's recipe (default configuration, ``train.max_minutes``, fold 0 of 4 synthetic patient folds,
FLAIR + T1ce as the real set has only those) on ``--cases`` synthetic BraTS 2019 cases of each anatomy,
then `gliomask predict` and `gliomask evaluate` on every patient of ``../shared/data/brats2013_real``.
The real patients chose nothing: the post-processing is tuned on the synthetic validation patients, the
final averaged weights are used. This is the realism test of the generator (issue 9): a model that only
ever saw synthetic brains must find tumours in real ones. Skips with a message when the folder is absent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "brats2013_real")
    ap.add_argument("--anatomy", nargs="+", default=["mni", "simple"], choices=["mni", "simple"])
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--minutes", type=float, default=7.0, help="train.max_minutes (the demo's CPU budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "transfer")
    ap.add_argument("overrides", nargs="*", help="extra key=value settings for training")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: the real development set is not here ({args.data})")
        return 0

    from gliomask.config import load_config
    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.data.synth import synthesize
    from gliomask.engine.train import train
    from gliomask.evaluation.evaluate import evaluate_folders
    from gliomask.inference.predict import predict_cases

    rows = []
    for anatomy in args.anatomy:
        out = args.out / anatomy
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        t0 = time.monotonic()
        synthesize(out / "synthetic", cases=args.cases, seed=args.seed, anatomy=anatomy, workers=2)
        t_synth = time.monotonic() - t0
        prepare(out / "synthetic", out / "prepared", PrepareSettings(modalities=("flair", "t1ce"), folds=4,
                                                                     seed=args.seed), workers=2, progress=False)
        cfg = load_config(None, [f"train.max_minutes={args.minutes}", "train.epochs=200", "train.val_every=1000",
                                 f"train.seed={args.seed}", *args.overrides])
        summary = train(out / "prepared", out / "run", cfg, fold=0, progress=False, command_line=sys.argv)
        predict_cases(args.data, out / "predictions", out / "run" / "best.pt", overlays=True, progress=False)
        per_case, metrics = evaluate_folders(out / "predictions", args.data, out / "evaluation", progress=False)
        rows.append({"anatomy": anatomy, "patients": len(per_case), "steps": summary["steps"],
                     "synth s/case": round(t_synth / args.cases, 2),
                     **{f"{r} Dice": round(metrics[f"dice_{r}"]["mean"], 3) for r in ("WT", "TC", "ET")},
                     **{f"{r} HD95": round(metrics[f"hd95_{r}"]["mean"], 1) for r in ("WT", "TC", "ET")}})
        for row in per_case:
            print(f"{anatomy} {row['case']}: " + " ".join(f"{r} {row[f'dice_{r}']:.3f}" for r in ("WT", "TC", "ET")),
                  flush=True)
    emit("transfer", rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
