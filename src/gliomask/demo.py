"""`gliomask demo`: the whole product on synthetic BraTS cases, in minutes, on a laptop CPU.

synthesise -> prepare -> train (time-boxed) -> predict held-out cases -> evaluate -> HTML report.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from gliomask.data.prepare import PrepareSettings, prepare
from gliomask.data.synth import synthesize
from gliomask.config import load_config
from gliomask.engine.train import train
from gliomask.errors import GliomaskError
from gliomask.evaluation.evaluate import evaluate_folders, format_table
from gliomask.evaluation.report_run import write_visual_report
from gliomask.inference.predict import predict_cases
from gliomask.models.factory import resolve_device
from gliomask.utils import default_workers

DEMO_MARKER = ".gliomask-demo"


def run_demo(out: str | Path = "demo_out", *, minutes: float | None = None, cases: int = 24, test_cases: int = 6,
             seed: int = 0, device: str = "auto", overrides: list[str] | None = None, fresh: bool = False,
             progress: bool = True, log=print) -> dict:
    """Run the demo into ``out`` and return the evaluation summary. ``minutes`` is the training budget
    (default 8 on CPU, 2 on a GPU)."""
    out = Path(out)
    if cases < 4:  # every argument is checked before anything is deleted or written
        raise GliomaskError("--cases must be at least 4 (training and validation patients)")
    if test_cases < 1:
        raise GliomaskError("--test-cases must be at least 1")
    if minutes is not None and minutes <= 0:
        raise GliomaskError("--minutes must be positive")
    if out.exists():
        if not out.is_dir():
            raise GliomaskError("demo output exists and is not a folder", out)
        if any(out.iterdir()):
            if not fresh:
                raise GliomaskError("demo folder exists; pass --fresh to replace it", out)
            if not (out / DEMO_MARKER).is_file():  # never delete a folder the demo did not make
                raise GliomaskError(f"--fresh replaces only a folder made by the demo (holding {DEMO_MARKER}); "
                                    "this one is not: choose another --out", out)
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("made by gliomask demo; `gliomask demo --fresh` may replace this folder\n")
    resolved = resolve_device(device)  # one device for training and prediction, as --device says
    on_gpu = resolved.type == "cuda"
    minutes = minutes if minutes is not None else (2.0 if on_gpu else 8.0)
    workers = default_workers()
    t0 = time.monotonic()
    stamps = {}

    log(f"[1/6] synthesising {cases} training and {test_cases} held-out BraTS 2019-style cases")
    synthesize(out / "brats_train", cases=cases, seed=seed, workers=workers, progress=progress)
    synthesize(out / "brats_test", cases=test_cases, seed=seed + 1000, start=cases + 1, workers=workers, progress=progress)
    stamps["synth"] = time.monotonic() - t0

    log("[2/6] preparing slices (4 modalities, WT/TC/ET instances, 4 patient-level folds)")
    prepare(out / "brats_train", out / "prepared", PrepareSettings(folds=4, seed=seed), workers=workers, progress=progress)
    stamps["prepare"] = time.monotonic() - t0

    log(f"[3/6] training Mask R-CNN ({'GPU' if on_gpu else 'CPU'}, at most {minutes:g} min)")
    cfg = load_config(None, [f"train.max_minutes={minutes}", "train.epochs=200", "train.val_every=1000",
                             f"train.device={device}", f"train.seed={seed}", *(overrides or [])])
    summary = train(out / "prepared", out / "run", cfg, fold=0, progress=progress,
                    command_line=["gliomask", "demo", f"--out={out}", f"--minutes={minutes}"])
    stamps["train"] = time.monotonic() - t0

    log("[4/6] predicting the held-out cases")
    predict_cases(out / "brats_test", out / "predictions", out / "run" / "best.pt",
                  device=str(resolved), progress=progress)
    stamps["predict"] = time.monotonic() - t0

    log("[5/6] evaluating against their ground truth")
    rows, metrics = evaluate_folders(out / "predictions", out / "brats_test", out / "evaluation", workers=workers,
                                     progress=progress)
    log("[6/6] writing the HTML report")
    report = write_visual_report(out / "predictions", out / "brats_test", out / "evaluation", rows, metrics,
                                 title=f"gliomask demo: {test_cases} held-out synthetic cases")
    stamps["total"] = time.monotonic() - t0

    val = summary.get("validation") or {}
    log("")
    log(f"Held-out synthetic cases ({test_cases}); trained {summary['steps']} steps in {summary['train_seconds'] / 60:.1f} min, "
        f"{summary['seconds'] / 60:.1f} min with validation:")
    log(format_table(metrics))
    if val:
        tuned = val.get("tuned") or val
        log(f"(validation patients, who chose the post-processing: Dice WT {val['dice_WT']:.3f} TC {val['dice_TC']:.3f} "
            f"ET {val['dice_ET']:.3f} at default settings, WT {tuned['dice_WT']:.3f} TC {tuned['dice_TC']:.3f} "
            f"ET {tuned['dice_ET']:.3f} tuned; the table above is on patients that chose nothing)")
    log("")
    log(f"wall time {stamps['total'] / 60:.1f} min (synth {stamps['synth']:.0f} s, prepare {stamps['prepare'] - stamps['synth']:.0f} s, "
        f"train {stamps['train'] - stamps['prepare']:.0f} s, predict {stamps['predict'] - stamps['train']:.0f} s)")
    log(f"  report        {report}")
    log(f"  label maps    {out / 'predictions'}/<case>_seg.nii.gz (+ _lesions.json/.csv, _overlay.png, _report.html)")
    log(f"  metrics       {out / 'evaluation' / 'metrics.csv'}, {out / 'evaluation' / 'summary.json'}")
    log(f"  checkpoint    {out / 'run' / 'best.pt'} (curves.png, metrics.jsonl beside it)")
    return {"summary": metrics, "rows": rows, "train": summary, "seconds": stamps, "report": str(report)}
