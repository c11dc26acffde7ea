"""Seconds per 240x240x155 four-modality volume on CPU, per backbone, against a torchvision-default pipeline.

    python bench/predict.py [--train-seconds 60] [--threads 2] [--baseline-every 1]

Every model is briefly trained first (`--train-seconds` of CPU training on synthetic cases): random
weights fill every slice with 100 detections, which no trained model does. The baseline runs the
resnet50-FPN weights (trained with torchvision's own head layout) under torchvision's defaults:
images resized to 800 px, 1000 RPN proposals, up to 100 detections, every slice one by one, no
brain crop. Each measurement runs in a fresh process so that its peak RSS is its own.
Goal: <= 5 s per volume, >= 30x faster than the baseline, <= 2 GB. The MobileNet is also exported
with `gliomask export` and timed through onnxruntime (same threads). A MobileNet trained on three
planes is timed fusing one, two and three of them, so that each added plane's cost shows. Every gliomask row
is one network pass per slice (``--no-tta``), as the baseline is; the MobileNet is also timed with flip TTA, the
default of ``gliomask predict``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, own_peak_rss_mb  # noqa: E402

# name -> training overrides; "resnet50_fpn_tv" keeps torchvision's head layout so that the
# torchvision-default baseline can load the very same weights.
MODELS = {
    "mobilenet_v3_fpn": ["model.backbone=mobilenet_v3_fpn"],
    "resnet18_fpn": ["model.backbone=resnet18_fpn"],
    "resnet34_fpn": ["model.backbone=resnet34_fpn"],
    "resnet50_fpn_v2": ["model.backbone=resnet50_fpn", "model.version=v2"],
    "resnet50_fpn_tv": ["model.backbone=resnet50_fpn", "model.box_head_dim=1024", "model.mask_head_layers=4",
                        "model.box_batch_size_per_image=128", "model.region_head=false", "model.context=0",
                        "model.modality_flags=false", "train.modality_dropout=0"],  # the 4 modalities alone
    # trained on three planes; timed with 1, 2 and 3 planes fused
    "mobilenet_v3_fpn_3planes": ["model.backbone=mobilenet_v3_fpn", "model.planes=[axial, coronal, sagittal]"],
}
PLANE_SETS = ("axial", "axial,coronal", "axial,coronal,sagittal")


def measure_gliomask(checkpoint: str, case_dir: str, threads: int, planes: str | None = None,
                     device: str = "cpu", tta: bool = False) -> dict:
    import torch

    from gliomask.inference.predictor import Predictor
    from gliomask.io.brats import discover_cases

    torch.set_num_threads(threads)
    predictor = Predictor.from_checkpoint(checkpoint, planes=planes.split(",") if planes else None, tta=tta,
                                          device="cpu" if checkpoint.endswith(".onnx") else device)
    case = discover_cases(case_dir)[0]
    predictor.predict_case(case)  # warm-up
    _sync(device)
    t = time.perf_counter()
    pred = predictor.predict_case(case)  # loads the NIfTI files, normalises, detects, builds the 3-D map
    _sync(device)
    seconds = time.perf_counter() - t
    return {"s_per_volume": seconds, "peak_rss_mb": own_peak_rss_mb(), "lesions": len(pred.lesions)}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_baseline(checkpoint: str, case_dir: str, threads: int, every: int, device: str = "cpu") -> dict:
    import numpy as np
    import torch
    import torchvision

    from gliomask.data.normalize import brain_mask, normalize_case
    from gliomask.models.checkpoint import load_checkpoint
    from gliomask.io.brats import discover_cases, load_case

    torch.set_num_threads(threads)
    ckpt = load_checkpoint(checkpoint)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=len(ckpt["classes"]) + 1,
        image_mean=[0.0] * 4, image_std=[1.0] * 4)
    model.backbone.body.conv1 = torch.nn.Conv2d(4, 64, 7, 2, 3, bias=False)  # context 0: the 4 modalities
    state = {k: v for k, v in ckpt["model"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not [k for k in missing if "num_batches" not in k], missing
    model.eval().to(device)
    case = load_case(discover_cases(case_dir)[0])
    t = time.perf_counter()
    images = normalize_case(case.images, brain_mask(case.images))
    slices = list(range(0, images.shape[-1], every))
    detections = 0
    with torch.no_grad():
        for z in slices:  # torchvision-default: every slice, one at a time, resized to 800 px
            out = model([torch.from_numpy(np.ascontiguousarray(images[..., z])).to(device)])[0]
            detections += len(out["scores"])
    _sync(device)
    seconds = (time.perf_counter() - t) * images.shape[-1] / len(slices)
    return {"s_per_volume": seconds, "peak_rss_mb": own_peak_rss_mb(), "mean_detections_per_slice": detections / len(slices),
            "slices_timed": len(slices)}


def _child(args) -> None:
    if args.baseline:
        result = measure_baseline(args.checkpoint, args.case, args.threads, args.baseline_every, args.device)
    else:
        result = measure_gliomask(args.checkpoint, args.case, args.threads, args.planes, args.device, args.tta)
    result["device"] = "cpu" if args.checkpoint.endswith(".onnx") else args.device
    print("RESULT " + json.dumps(result))


def _stretched_case(case_dir: Path, out: Path, shape: tuple[int, int, int]) -> Path:
    """The case's files resampled (linear, labels nearest) onto a larger grid kept at 1 mm: a bigger head
    in the model's own geometry, which no resampling at prediction shrinks back."""
    import nibabel as nib
    from scipy import ndimage

    folder = out / case_dir.name
    folder.mkdir(parents=True)
    for path in case_dir.glob("*.nii.gz"):
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
        zoom = [n / o for n, o in zip(shape, data.shape)]
        big = ndimage.zoom(data, zoom, order=0 if path.name.endswith("_seg.nii.gz") else 1)
        nib.save(nib.Nifti1Image(big.astype(data.dtype), img.affine), str(folder / path.name))
    return folder


def _run_child(extra: list[str], threads: int, device: str = "cpu") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, __file__, "--child", "--device", device, *extra], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-seconds", type=float, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--baseline-every", type=int, default=1, help="time every k-th slice of the baseline and scale up")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--large", default=None, metavar="X,Y,Z",
                    help="also time the MobileNet on the held-out case stretched to this 1 mm grid (e.g. 512,512,400): "
                         "seconds and peak RSS against the BraTS grid's, the memory that grows with the voxels")
    ap.add_argument("--also", nargs="*", default=[], metavar="CHECKPOINT",
                    help="also time these trained checkpoints (e.g. demo_out/run/best.pt)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where every pipeline, the baseline too, predicts")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the onnxruntime row")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--planes", help=argparse.SUPPRESS)
    ap.add_argument("--tta", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args)

    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.data.synth import synthesize
    from gliomask.config import load_config
    from gliomask.engine.train import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "train", cases=8, seed=0, workers=2)
        synthesize(tmp / "case", cases=1, seed=7, start=100, workers=1)
        case_dir = str(next((tmp / "case").glob("*GG/*")))
        prepare(tmp / "train", tmp / "prep", PrepareSettings(folds=1), workers=2, progress=False)
        for name in args.models:
            cfg = load_config(None, MODELS[name] + [f"train.max_minutes={args.train_seconds / 60}", "train.epochs=100",
                                                    "train.val_every=1000", f"train.threads={args.threads}"])
            train(tmp / "prep", tmp / name, cfg, fold=None, progress=False)
            for planes in (PLANE_SETS if name.endswith("3planes") else (None,)):
                result = _run_child(["--checkpoint", str(tmp / name / "best.pt"), "--case", case_dir,
                                     "--threads", str(args.threads), *(["--planes", planes] if planes else [])], args.threads,
                                    args.device)
                rows.append({"pipeline": f"gliomask {name}" + (f" predicting {planes}" if planes else ""), **result})
                print(rows[-1], flush=True)
            if name == "mobilenet_v3_fpn":  # with the flipped pass averaged in, as `gliomask predict` does by default
                result = _run_child(["--checkpoint", str(tmp / name / "best.pt"), "--case", case_dir, "--tta",
                                     "--threads", str(args.threads)], args.threads, args.device)
                rows.append({"pipeline": f"gliomask {name}, flip TTA (predict's default)", **result})
                print(rows[-1], flush=True)
            if name == "mobilenet_v3_fpn" and args.onnx:  # the same network through onnxruntime
                from gliomask.models.onnx_export import export_onnx

                onnx_path = export_onnx(tmp / name / "best.pt", tmp / name / "model.onnx")
                result = _run_child(["--checkpoint", str(onnx_path), "--case", case_dir, "--threads", str(args.threads)],
                                    args.threads)
                rows.append({"pipeline": f"gliomask {name}, onnxruntime (gliomask export)", **result})
                print(rows[-1], flush=True)
        if args.large and "mobilenet_v3_fpn" in args.models:
            large_dir = _stretched_case(Path(case_dir), tmp / "large", tuple(int(v) for v in args.large.split(",")))
            result = _run_child(["--checkpoint", str(tmp / "mobilenet_v3_fpn" / "best.pt"), "--case", str(large_dir),
                                 "--threads", str(args.threads)], args.threads, args.device)
            rows.append({"pipeline": f"gliomask mobilenet_v3_fpn, one case stretched to {args.large} (1 mm)", **result})
            print(rows[-1], flush=True)
        for path in args.also:
            result = _run_child(["--checkpoint", str(Path(path).resolve()), "--case", case_dir,
                                 "--threads", str(args.threads)], args.threads, args.device)
            rows.append({"pipeline": f"gliomask {path}", **result})
            print(rows[-1], flush=True)
        if "resnet50_fpn_tv" in args.models:
            result = _run_child(["--baseline", "--checkpoint", str(tmp / "resnet50_fpn_tv" / "best.pt"), "--case", case_dir,
                                 "--threads", str(args.threads), "--baseline-every", str(args.baseline_every)], args.threads,
                                args.device)
            rows.append({"pipeline": "torchvision defaults, resnet50_fpn_tv weights", **result})
            print(rows[-1], flush=True)
            base = result["s_per_volume"]
            for row in rows:
                row["speedup_vs_baseline"] = base / row["s_per_volume"]
    print(f"(each model trained {args.train_seconds:.0f} s on 8 synthetic cases, {args.threads} CPU threads)")
    emit("predict", rows, args.json)


if __name__ == "__main__":
    main()
