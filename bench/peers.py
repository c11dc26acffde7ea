"""gliomask beside what users would pick instead, on the same patients, machine and training budget.

    python bench/peers.py --train DIR --test DIR [--minutes 25] [--peers gliomask,maskrcnn_torchvision,...]
                          [--modalities t1,t1ce,t2,flair] [--threads 2] [--device cpu] [--out bench/out/peers]

DIR: any BraTS-layout folder (2019 or 2023 names). Each system trains on ``--train`` for ``--minutes``
of wall-clock time, predicts every case of ``--test`` into ``OUT/<system>/pred/<case>_seg.nii.gz`` (the
test case's grid and label values), and is scored by `gliomask evaluate` (BraTS 2023 standard, and
legacy). Systems run one after another, each in its own process (never two torch jobs at once), so
that each one's peak memory is its own. Printed and written (``OUT/peers.json``): per system, Dice,
HD95 and lesion-wise Dice per region, lesion sensitivity and false positives per case (2023 standard),
legacy Dice, training minutes, predict seconds per case, peak RSS.

    python bench/peers.py --summarize OUT1/peers.json OUT2/peers.json ... [--out DIR]

averages the folds' tables (one JSON per held-out fold, same budget) into the cross-validated mean per system,
printed and written as ``DIR/peers_summary.json`` when ``--out`` is given. Where a file holds several rows of one
system (``gliomask (6100c46)``: reruns, appended in run order), its last is that fold's row.

Systems:
- ``gliomask``: the documented CPU recipe (``configs/cpu_light.yaml``), ``train.max_minutes`` = budget.
- ``maskrcnn_torchvision``: the pipeline the project began from, torchvision's default Mask R-CNN as its
  detection reference trains it (``TORCHVISION_DEFAULT``): ResNet-50 FPN from scratch, torchvision's
  head sizes and proposal counts, one class per region (WT, TC, ET), the four modalities as four input
  channels of one slice, SGD at torchvision's learning rate scaled to 4 slices a batch; no dense region
  head, context slices, modality flags, weight averaging or augmentation. Slices are resized to 240 px as
  gliomask's are (torchvision's default of 800 px would give each slice 11 times the pixels). Trained and
  predicted by gliomask's engine (the same slices, budget and post-processing): only model and recipe differ.
- ``monai_segresnet``: MONAI's SegResNet as its BraTS bundle builds it (16 initial filters, blocks down
  1-2-2-4, up 1-1-1; sigmoid WT/TC/ET outputs, Dice loss), trained from scratch with MONAI's own
  transforms on 96^3 crops, Adam 1e-4 with cosine decay over the budget, predicted with MONAI's sliding
  window (128^3, overlap 0.5); ``pip install 'gliomask[peers]'``.
- ``nnunet_2d``, ``nnunet_3d_fullres``: nnU-Net v2 (``pip install 'gliomask[peers]'``), planned,
  preprocessed, trained region-based (WT/TC/ET) and predicted by nnU-Net itself; a trainer subclass stops
  on the clock (see ``bench/peers_nnunet.py``). Predicted with mirroring TTA (nnU-Net's default) and again
  without: the second is the row ``<system> noTTA``.
- ``flair_otsu``: a baseline without training: FLAIR above its Otsu threshold inside the brain, components
  of at least 1 mL, labelled oedema (whole tumour only; TC and ET empty).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, own_peak_rss_mb  # noqa: E402

PEERS = ("gliomask", "maskrcnn_torchvision", "monai_segresnet", "nnunet_2d", "nnunet_3d_fullres", "flair_otsu")
# torchvision's maskrcnn_resnet50_fpn (weights=None) and references/detection/train.py, in gliomask's settings
TORCHVISION_DEFAULT = [
    "model.backbone=resnet50_fpn", "model.version=v1", "model.norm=batch",  # BatchNorm: no pretrained weights here
    "model.box_head_dim=1024", "model.mask_head_layers=4",  # TwoMLPHead(1024), MaskRCNNHeads(256 x 4)
    "model.rpn_pre_nms_top_n_train=2000", "model.rpn_post_nms_top_n_train=2000",
    "model.rpn_pre_nms_top_n_test=1000", "model.rpn_post_nms_top_n_test=1000",
    "model.box_batch_size_per_image=512", "model.box_detections_per_img=100",
    "model.region_head=false", "model.detector=scheme", "model.context=0",  # classes WT, TC, ET; one slice
    "model.modality_flags=false", "train.modality_dropout=0", "train.ema_decay=0", "train.augment=false",
    "train.lr=0.005", "train.momentum=0.9", "train.weight_decay=0.0001",  # the reference's 0.02 for 16 images
]
NEEDS = {"monai_segresnet": "monai", "nnunet_2d": "nnunetv2", "nnunet_3d_fullres": "nnunetv2"}  # peer -> its module


def available(peer: str) -> str | None:
    """None when ``peer`` can run here, else why not."""
    module = NEEDS.get(peer)
    if module is None:
        return None
    import importlib.util

    return None if importlib.util.find_spec(module) else f"{module} is not installed (pip install 'gliomask[peers]')"


def write_prediction(labels: np.ndarray, case, reference, out_dir: Path) -> None:
    """Internal labels -> ``out_dir/<case>_seg.nii.gz`` in the case's own edition and grid."""
    from gliomask.io.nifti import save_like
    from gliomask.labels import to_convention

    save_like(to_convention(labels.astype(np.uint8), case.convention), reference, out_dir / f"{case.case_id}_seg.nii.gz")


# --- the systems (each runs in a child process: `--system NAME`) -------------------------------------

def run_gliomask(train_dir: Path, test_cases, minutes: float, work: Path, modalities: str, pred: Path,
                 device: str = "cpu", recipe: tuple[str, ...] = ()) -> dict:
    """The documented CPU recipe; ``recipe``: settings over it (``TORCHVISION_DEFAULT``)."""
    from gliomask.config import load_config
    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.engine.train import train
    from gliomask.inference.predictor import Predictor

    t0 = time.monotonic()
    prepare(train_dir, work / "prepared", PrepareSettings(modalities=modalities, folds=1, allow_missing=True),
            workers=1, progress=False)
    overrides = [*recipe, f"train.max_minutes={minutes}", "infer.tune=false", "train.val_every=1000",
                 f"train.device={device}"]
    summary = train(work / "prepared", work / "run", load_config(ROOT / "configs" / "cpu_light.yaml", overrides),
                    fold=None, progress=False)  # every training case; no validation split
    train_s = time.monotonic() - t0
    predictor = Predictor.from_checkpoint(work / "run" / "best.pt", device=device)
    seconds = []
    for case in test_cases:
        t1 = time.monotonic()
        loaded = predictor.load(case)
        labels = predictor.predict_case(loaded).labels
        seconds.append(time.monotonic() - t1)
        write_prediction(labels, case, loaded.reference, pred)
    return {"train_s": train_s, "predict_s": seconds, "steps": summary.get("steps")}


def _monai_arrays(case, modalities):
    """(Float32 [C, X, Y, Z] images, Float32 [3, X, Y, Z] WT/TC/ET or None, reference) of one case."""
    from gliomask.io.brats import load_case
    from gliomask.labels import regions_from_labels

    loaded = load_case(case, modalities, allow_missing=True)
    regions = regions_from_labels(loaded.seg).astype(np.float32) if loaded.seg is not None else None
    return loaded.images.astype(np.float32), regions, loaded.reference


def _segresnet(channels: int):
    from monai.networks.nets import SegResNet

    return SegResNet(blocks_down=[1, 2, 2, 4], blocks_up=[1, 1, 1], init_filters=16, in_channels=channels,
                     out_channels=3, dropout_prob=0.2)


def run_monai_segresnet(train_dir: Path, test_cases, minutes: float, work: Path, modalities: str, pred: Path,
                        device: str = "cpu") -> dict:
    import torch
    from monai.data import DataLoader, Dataset
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceLoss
    from monai.transforms import (Compose, NormalizeIntensityd, RandFlipd, RandScaleIntensityd, RandShiftIntensityd,
                                  RandSpatialCropd, SpatialPadd)

    from gliomask.io.brats import discover_cases, parse_modalities

    mods = parse_modalities(modalities)
    t0 = time.monotonic()
    data = []
    for case in discover_cases(train_dir):
        image, label, _ = _monai_arrays(case, mods)
        data.append({"image": image, "label": label})
    roi = (96, 96, 96)
    augment = Compose([
        NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True),
        SpatialPadd(keys=["image", "label"], spatial_size=roi),
        RandSpatialCropd(keys=["image", "label"], roi_size=roi, random_size=False),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=1),
        RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=2),
        RandScaleIntensityd(keys="image", factors=0.1, prob=1.0),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=1.0),
    ])
    loader = DataLoader(Dataset(data, augment), batch_size=1, shuffle=True, num_workers=0)
    model = _segresnet(len(mods)).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    loss_fn = DiceLoss(smooth_nr=0, smooth_dr=1e-5, squared_pred=True, to_onehot_y=False, sigmoid=True)
    budget, steps = minutes * 60.0, 0
    model.train()
    while time.monotonic() - t0 < budget:
        for batch in loader:
            elapsed = time.monotonic() - t0
            if elapsed >= budget:
                break
            for group in optimiser.param_groups:  # cosine decay over the wall-clock budget
                group["lr"] = 1e-4 * 0.5 * (1 + np.cos(np.pi * min(elapsed / budget, 1.0)))
            optimiser.zero_grad()
            loss = loss_fn(model(batch["image"].to(device)), batch["label"].to(device))
            loss.backward()
            optimiser.step()
            steps += 1
    train_s = time.monotonic() - t0
    model.eval()
    normalise = NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True)
    seconds = []
    from gliomask.labels import labels_from_regions

    for case in test_cases:
        t1 = time.monotonic()
        image, _, reference = _monai_arrays(case, mods)
        x = torch.as_tensor(np.asarray(normalise({"image": image})["image"]))[None].to(device)
        with torch.no_grad():
            prob = torch.sigmoid(sliding_window_inference(x, (128, 128, 128), 1, model, overlap=0.5))[0].cpu().numpy()
        regions = prob > 0.5
        regions[1] &= regions[0]
        regions[2] &= regions[1]
        seconds.append(time.monotonic() - t1)
        write_prediction(labels_from_regions(regions), case, reference, pred)
    return {"train_s": train_s, "predict_s": seconds, "steps": steps}


def run_flair_otsu(train_dir: Path, test_cases, minutes: float, work: Path, modalities: str, pred: Path,
                   device: str = "cpu") -> dict:
    from scipy import ndimage

    from gliomask.io.brats import load_case
    from gliomask.labels import OEDEMA

    seconds = []
    for case in test_cases:
        t1 = time.monotonic()
        loaded = load_case(case, ("flair",))
        flair = loaded.images[0]
        values = flair[flair > 0]
        hist, edges = np.histogram(values, bins=256)
        centres = (edges[:-1] + edges[1:]) / 2
        w0 = np.cumsum(hist)
        w1 = w0[-1] - w0
        m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
        m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
        threshold = centres[np.argmax(w0 * w1 * (m0 - m1) ** 2)]  # Otsu: largest between-class variance
        mask = flair > threshold
        parts, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
        voxel_ml = float(np.prod(loaded.spacing)) / 1000.0
        sizes = np.bincount(parts.ravel(), minlength=n + 1) * voxel_ml
        keep = np.flatnonzero(sizes >= 1.0)
        labels = np.where(np.isin(parts, keep[keep > 0]), OEDEMA, 0).astype(np.uint8)
        seconds.append(time.monotonic() - t1)
        write_prediction(labels, case, loaded.reference, pred)
    return {"train_s": 0.0, "predict_s": seconds, "steps": 0}


def _nnunet(configuration: str):
    def run(*args, device: str = "cpu"):
        from peers_nnunet import run_nnunet

        return run_nnunet(configuration, write_prediction, *args, device=device)

    return run


def run_maskrcnn_torchvision(*args, device: str = "cpu") -> dict:
    return run_gliomask(*args, device=device, recipe=tuple(TORCHVISION_DEFAULT))


SYSTEMS = {"gliomask": run_gliomask, "maskrcnn_torchvision": run_maskrcnn_torchvision, "monai_segresnet": run_monai_segresnet, "nnunet_2d": _nnunet("2d"),
           "nnunet_3d_fullres": _nnunet("3d_fullres"), "flair_otsu": run_flair_otsu}


def child(args) -> int:
    """Run one system (this process is its own: its peak RSS is the system's)."""
    import torch

    from gliomask.io.brats import discover_cases

    torch.set_num_threads(args.threads)
    work = args.out / args.system
    pred = work / "pred"
    pred.mkdir(parents=True, exist_ok=True)
    stats = SYSTEMS[args.system](args.train, discover_cases(args.test), args.minutes, work, args.modalities, pred,
                                 device=args.device)
    stats["peak_rss_mb"] = own_peak_rss_mb()
    (work / "stats.json").write_text(json.dumps(stats))
    return 0


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"


def score(pred: Path, test: Path) -> dict:
    from gliomask.evaluation.evaluate import evaluate_folders

    row = {}
    _, summary = evaluate_folders(pred, test, progress=False, standard="brats2023")
    for region in ("WT", "TC", "ET"):
        row[f"Dice {region}"] = summary[f"dice_{region}"]["mean"]
    for region in ("WT", "TC", "ET"):
        row[f"HD95 {region}"] = summary[f"hd95_{region}"]["median"]
    for region in ("WT", "TC", "ET"):
        row[f"lesion Dice {region}"] = summary[f"lesion_dice_{region}"]["mean"]
    row["lesion sens WT"] = summary["lesion_sensitivity_WT"]
    row["FP/case WT"] = summary["fp_per_case_WT"]
    _, legacy = evaluate_folders(pred, test, progress=False, standard="legacy")
    for region in ("WT", "TC", "ET"):
        row[f"legacy Dice {region}"] = legacy[f"dice_{region}"]["mean"]
    return row


def _system_name(row: dict) -> str:
    """``gliomask (6100c46, TTA)`` -> ``gliomask``: a rerun's label in parentheses names the same system."""
    return row["system"].split(" (")[0]


def summarize(paths: list[Path]) -> list[dict]:
    """Per system, the mean of every numeric column over the fold files that hold a row for it.

    Each file is one fold's ``peers.json`` (``{"meta": {"minutes": ...}, "rows": [...]}``); a system's last row
    in a file is its row for that fold; skipped and failed rows count as absent. ``folds`` says how many files a
    system's mean is over, so a system missing from some folds is not mistaken for a full cross-validation.
    Raises ValueError, naming the file, when one cannot be read or is not such a table, and when the files'
    budgets differ: a mean over mixed budgets measures neither.
    """
    budgets = set()
    per_system: dict[str, list[dict]] = {}
    for path in paths:
        try:
            table = json.loads(Path(path).read_text())
            budgets.add(table["meta"]["minutes"])
            rows = table["rows"]
        except OSError as err:
            raise ValueError(f"{path}: {err.strerror or err}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a bench/peers.py table ({type(err).__name__}: {err})") from None
        latest = {}
        for row in rows:
            if "skipped" not in row and "failed" not in row:
                latest[_system_name(row)] = row
        for system, row in latest.items():
            per_system.setdefault(system, []).append(row)
    if len(budgets) > 1:
        raise ValueError(f"the files hold different budgets ({', '.join(f'{m:g}' for m in sorted(budgets))} min)")
    summary = []
    for system, rows in per_system.items():
        columns = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and all(k in r for r in rows)]
        summary.append({"system": system, "folds": len(rows),
                        **{k: float(np.mean([r[k] for r in rows])) for k in columns}})
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summarize", type=Path, nargs="+", metavar="PEERS_JSON",
                    help="average these folds' peers.json into one table instead of running")
    ap.add_argument("--train", type=Path)
    ap.add_argument("--test", type=Path)
    ap.add_argument("--minutes", type=float, default=25.0, help="training budget per system (wall clock)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, from {', '.join(PEERS)}")
    ap.add_argument("--modalities", default="t1,t1ce,t2,flair")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU comparison (every system on it)")
    ap.add_argument("--out", type=Path, help="default bench/out/peers; with --summarize, none (print only)")
    ap.add_argument("--system", choices=PEERS, help=argparse.SUPPRESS)  # internal: run one system
    args = ap.parse_args()
    if args.summarize:
        try:
            rows = summarize(args.summarize)
        except ValueError as err:
            print(f"--summarize: {err}", file=sys.stderr)
            return 2
        emit("peers_summary", rows, args.out)
        return 0
    if args.train is None or args.test is None:
        ap.error("--train and --test are required (or --summarize)")
    args.out = (args.out or ROOT / "bench" / "out" / "peers").resolve()
    if args.system:
        return child(args)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        print(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}", file=sys.stderr)
        return 2
    from gliomask.io.brats import discover_cases

    test_ids = [c.case_id for c in discover_cases(args.test)]
    train_ids = {c.case_id for c in discover_cases(args.train)}
    if train_ids & set(test_ids):
        print(f"train and test share cases: {', '.join(sorted(train_ids & set(test_ids)))}", file=sys.stderr)
        return 2
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for peer in peers:
        why = available(peer)
        if why:
            print(f"{peer}: skipped, {why}", flush=True)
            rows.append({"system": peer, "skipped": why})
            continue
        print(f"{peer}: training {args.minutes:g} min on {len(train_ids)} case(s), then predicting {len(test_ids)}", flush=True)
        cmd = [sys.executable, __file__, "--system", peer, "--train", str(args.train), "--test", str(args.test),
               "--minutes", str(args.minutes), "--modalities", args.modalities, "--threads", str(args.threads),
               "--device", args.device, "--out", str(args.out)]
        done = subprocess.run(cmd, env=env)
        if done.returncode != 0:
            rows.append({"system": peer, "failed": f"exit {done.returncode}"})
            continue
        stats = json.loads((args.out / peer / "stats.json").read_text())
        variants = {"": stats, **stats.get("variants", {})}  # a variant: the same model predicted another way
        for variant, predicted in variants.items():
            rows.append({"system": f"{peer} {variant}".strip(),
                         **score(args.out / peer / (f"pred_{variant}" if variant else "pred"), args.test),
                         "train min": stats["train_s"] / 60, "steps": stats["steps"],
                         "predict s/case": float(np.mean(predicted["predict_s"])),
                         "peak RSS MB": stats["peak_rss_mb"]})
    meta = {"train": str(args.train), "test": str(args.test), "test cases": test_ids, "minutes": args.minutes,
            "threads": args.threads, "modalities": args.modalities, "device": args.device,
            "machine": f"{os.cpu_count()} CPUs" + (f", {_gpu_name()}" if args.device.startswith("cuda") else "")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    emit("peers", rows, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
