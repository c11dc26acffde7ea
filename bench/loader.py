"""Which limits training: the data loader (augmentation on) or the model step? Slices per second of each.

    python bench/loader.py [--cases 4] [--workers 0 1 2 4] [--batches 40] [--batch 4] [--device auto]

The loader is the training one (`PreparedSlices` with `SliceAugment`, 2.5-D context, modality flags and
dropout, the tumour-balanced sampler) over synthetic MNI-anatomy cases; it is timed from its first batch
(worker start-up reported apart). The model step is the documented recipe's network (``cpu_light.yaml``)
forward and backward on the same batches, on ``--device``. A GPU wants the loader well above its step
rate: the goal for one worker is 150 slices/s, about what one H100 consumes with the MobileNet model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def loader_rate(dataset, sampler, workers: int, batches: int, batch: int) -> tuple[float, float]:
    """(slices per second after the first batch, seconds to the first batch) for ``workers`` processes."""
    from gliomask.data.dataset import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate,
                                         num_workers=workers, pin_memory=torch.cuda.is_available(),
                                         persistent_workers=False)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    seen = 0
    for _ in range(batches):
        images, _ = next(it)
        seen += len(images)
    rate = seen / (time.perf_counter() - t1)
    del it
    return rate, first


def step_rate(cfg, dataset, device: torch.device, amp: bool, batch: int, steps: int = 10) -> float:
    """Slices per second of forward + backward + SGD step on ``device`` (bench/train.py's timing)."""
    from gliomask.data.dataset import collate
    from gliomask.models.factory import model_from_config
    from train import measure  # bench/train.py

    torch.manual_seed(0)
    model = model_from_config(cfg, 1, dataset[0][0].shape[0])
    batches = [collate([dataset[(i * batch + j) % len(dataset)] for j in range(batch)]) for i in range(steps + 2)]
    return measure(model, batches, device, amp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "cpu_light.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()

    from gliomask.config import load_config
    from gliomask.data.dataset import PreparedSlices
    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.data.prepared import Prepared
    from gliomask.data.synth import synthesize
    from gliomask.data.transforms import SliceAugment
    from gliomask.engine.sampler import TumourBalancedSampler
    from gliomask.models.factory import resolve_device

    cfg = load_config(args.config)
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp) / "b", cases=args.cases, seed=5, workers=2)
        prepare(Path(tmp) / "b", Path(tmp) / "p", PrepareSettings(folds=1), workers=2, progress=False)
        prepared = Prepared.open(Path(tmp) / "p")
        dataset = PreparedSlices(prepared, prepared.case_ids, transforms=SliceAugment(), scheme="whole",
                                 context=cfg.model.context, modality_flags=cfg.model.modality_flags,
                                 modality_dropout=cfg.train.modality_dropout)
        sampler = TumourBalancedSampler(dataset.is_negative, negative_share=cfg.train.negative_share, seed=0)
        for workers in args.workers:
            rate, first = loader_rate(dataset, sampler, workers, args.batches, args.batch)
            rows.append({"what": "training loader (augmentation on)", "device": "cpu", "workers": workers,
                         "amp": "-", "slices/s": round(rate, 1), "first batch s": round(first, 2),
                         "threads": torch.get_num_threads()})
            print(rows[-1], flush=True)
        for amp in ([False, True] if device.type == "cuda" else [False]):
            rate = step_rate(cfg, dataset, device, amp, args.batch)
            rows.append({"what": f"model step ({cfg.model.backbone})", "device": str(device), "workers": "-",
                         "amp": amp, "slices/s": round(rate, 1), "first batch s": "-",
                         "threads": torch.get_num_threads() if device.type == "cpu" else "-"})
            print(rows[-1], flush=True)
    emit("loader", rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
