"""The real development set: four expert-labelled glioma patients (FLAIR + T1ce), two folds.

    python bench/real.py [--data ../shared/data/brats2013_real] [--folds 0 1] [--minutes 28] [--out bench/out/real]

Prepares the patients with ``--modalities flair,t1ce --folds 4`` and, per fold, trains with the
documented CPU recipe (``configs/cpu_light.yaml``, ``train.max_minutes``), then predicts the fold's
validation patient with the checkpoint and scores it with `gliomask evaluate`'s code.

Honesty of the figures: with four patients, a fold trains on three and validates on the fourth. The
"default settings" row is that patient at fixed post-processing and the final epoch: it chose nothing.
The "tuned" rows are the same patient after the post-processing search on it: tuning figures, not
results. Skips with a message when the folder is absent (a user's clone has no ../shared).
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--minutes", type=float, default=28.0, help="train.max_minutes per fold (whole run)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "real")
    ap.add_argument("overrides", nargs="*", help="extra key=value settings for training")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: the real development set is not here ({args.data})")
        return 0

    from gliomask.data.prepare import PrepareSettings, prepare

    from gliomask.data.prepared import Prepared
    from gliomask.config import load_config
    from gliomask.engine.train import train
    from gliomask.evaluation.evaluate import evaluate_folders
    from gliomask.inference.predict import predict_cases

    args.out.mkdir(parents=True, exist_ok=True)
    prepared_dir = args.out / "prepared"
    prepare(args.data, prepared_dir, PrepareSettings(modalities=("flair", "t1ce"), folds=4), workers=2, progress=False)
    prepared = Prepared.open(prepared_dir)
    rows = []
    for fold in args.folds:
        train_ids, val_ids = prepared.split(fold)
        run = args.out / f"fold{fold}"
        if run.exists():
            shutil.rmtree(run)
        cfg = load_config(ROOT / "configs" / "cpu_light.yaml", [f"train.max_minutes={args.minutes}", *args.overrides])
        t0 = time.monotonic()
        summary = train(prepared_dir, run, cfg, fold=fold, progress=False, command_line=sys.argv)
        wall = time.monotonic() - t0
        val = summary["validation"]
        preds = args.out / f"pred_fold{fold}"
        if preds.exists():
            shutil.rmtree(preds)
        predict_cases(args.data, preds, run / "best.pt", case_ids=val_ids, overlays=True, progress=False)
        _, metrics = evaluate_folders(preds, args.data, args.out / f"eval_fold{fold}", case_ids=val_ids, progress=False)
        base = {"fold": fold, "validation patient": ",".join(val_ids), "trained on": len(train_ids),
                "steps": summary["steps"], "wall min": round(wall / 60, 1),
                "val+tune share": round(summary["val_seconds"] / max(summary["seconds"], 1e-9), 3)}
        rows.append({**base, "figures": "default settings (chose nothing)",
                     **{f"{r} Dice": round(val[f"dice_{r}"], 3) for r in ("WT", "TC", "ET")}})
        rows.append({**base, "figures": "tuned on this patient",
                     **{f"{r} Dice": round(val["tuned"][f"dice_{r}"], 3) for r in ("WT", "TC", "ET")}})
        rows.append({**base, "figures": "predict + evaluate, tuned (tuning patient)",
                     **{f"{r} Dice": round(metrics[f"dice_{r}"]["mean"], 3) for r in ("WT", "TC", "ET")},
                     **{f"{r} HD95": round(metrics[f"hd95_{r}"]["mean"], 2) for r in ("WT", "TC", "ET")}})
        post = json.dumps({k: v for k, v in __import__("torch").load(run / "best.pt", weights_only=True)["postprocessing"].items()})
        print(f"fold {fold}: post-processing chosen on {','.join(val_ids)}: {post}", flush=True)
    emit("real", rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
