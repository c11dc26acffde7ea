"""Training throughput (slices per second) per backbone on prepared synthetic data.

    python bench/train.py [--steps 8] [--batch 4] [--workers 1]
On CPU it uses the threads torch is given (2 on the reference machine); on a CUDA machine it also
reports AMP on and off. Two figures per row: the model step alone (batches collated beforehand) and
the step fed by the training DataLoader (augmentation on, ``--workers`` processes), as training runs:
when the second is lower, the data pipeline limits training (see bench/loader.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb  # noqa: E402

from gliomask.data.dataset import PreparedSlices, collate  # noqa: E402
from gliomask.data.prepare import PrepareSettings, prepare  # noqa: E402
from gliomask.data.prepared import Prepared  # noqa: E402
from gliomask.data.synth import synthesize  # noqa: E402
from gliomask.config import load_config  # noqa: E402
from gliomask.models.factory import model_from_config  # noqa: E402
from gliomask.models import BACKBONES  # noqa: E402


def sgd_step(model, opt, scaler, images, targets, amp: bool) -> None:
    with torch.autocast(images[0].device.type, enabled=amp):
        loss = sum(model(images, targets).values())
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def measure(model, batches, device, amp: bool) -> float:
    model.to(device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.002, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    times = []
    for i, (images, targets) in enumerate(batches):
        images = [im.to(device) for im in images]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        sgd_step(model, opt, scaler, images, targets, amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # the first steps warm up allocators and kernels
            times.append(time.perf_counter() - t)
    return len(batches[0][0]) / (sum(times) / len(times))


def measure_with_loader(model, loader, device, amp: bool, steps: int) -> float:
    """Slices per second of SGD steps fed by ``loader`` (its waits included), after two warm-up steps."""
    model.to(device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.002, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    seen, start = 0, None
    for i, (images, targets) in enumerate(loader):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        sgd_step(model, opt, scaler, images, targets, amp)
        if i >= 2:
            seen += len(images)
        if i + 1 >= steps + 2:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers for the loader-fed figure")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp) / "b", cases=3, seed=1, workers=2)
        prepare(Path(tmp) / "b", Path(tmp) / "p", PrepareSettings(folds=1), workers=2, progress=False)
        prep = Prepared.open(Path(tmp) / "p")
        ds = PreparedSlices(prep, prep.case_ids, negatives=False)
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
        batches = [collate([ds[i] for i in idx[s * args.batch:(s + 1) * args.batch]]) for s in range(args.steps)]
        from gliomask.data.transforms import SliceAugment

        augmented = PreparedSlices(prep, prep.case_ids, negatives=False, transforms=SliceAugment())
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        for backbone in args.backbones:
            version = "v2" if backbone == "resnet50_fpn" else "v1"
            overrides = [f"model.backbone={backbone}", f"model.version={version}"]
            for device in devices:
                for amp in ([False, True] if device.type == "cuda" else [False]):
                    cfg = load_config(None, overrides)
                    torch.manual_seed(0)
                    model = model_from_config(cfg, 3, 4)
                    sps = measure(model, batches, device, amp)
                    loader = torch.utils.data.DataLoader(
                        augmented, batch_size=args.batch, shuffle=True, collate_fn=collate, num_workers=args.workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
                    fed = measure_with_loader(model, loader, device, amp, args.steps)
                    rows.append({"backbone": f"{backbone} {version}", "device": device.type, "amp": amp,
                                 "threads": torch.get_num_threads() if device.type == "cpu" else "-",
                                 "batch": args.batch, "slices_per_s": sps, "s_per_step": args.batch / sps,
                                 "workers": args.workers, "with_loader_slices_per_s": fed,
                                 "process_peak_rss_mb_so_far": peak_rss_mb()})
                    print(rows[-1], flush=True)
    emit("train", rows, args.json)


if __name__ == "__main__":
    main()
