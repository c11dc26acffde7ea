"""Running the slice detector over a volume and turning its instances into 3-D region maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gliomask.inference.regions import class_to_regions


@dataclass
class SliceDetections:
    """Detections on one slice: ``scores`` Float32 [N], ``labels`` Int64 [N] (1-based classes),
    ``masks`` Float16 [N, H, W] soft masks in [0, 1] (TTA passes are flipped back)."""

    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


@torch.no_grad()
def detect_volume(model, volume: np.ndarray, *, batch_size: int = 8, device: str | torch.device = "cpu",
                  tta: bool = False, amp: bool = False) -> list[list[SliceDetections]]:
    """Run ``model`` (eval mode) over every slice of ``volume`` that holds brain.

    Args:
        volume: Float [S, C, H, W] normalised slices (slicing axis first).
    Returns:
        One list per TTA pass (1, or 2 with ``tta``: identity and W-flip), each with S entries.
        Slices without brain get empty detections without running the model.
    """
    model.eval()
    num = volume.shape[0]
    empty = SliceDetections(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, *volume.shape[2:]), np.float16))
    has_brain = np.flatnonzero(np.abs(volume).reshape(num, -1).max(axis=1) > 0)
    passes = [False, True] if tta else [False]
    results = []
    device = torch.device(device)
    for flip in passes:
        out = [empty] * num
        for start in range(0, len(has_brain), batch_size):
            idx = has_brain[start:start + batch_size]
            batch = torch.from_numpy(np.asarray(volume[idx], dtype=np.float32)).to(device)
            if flip:
                batch = batch.flip(-1)
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                preds = model(list(batch))
            for s, p in zip(idx, preds):
                masks = p["masks"][:, 0].float()
                if flip:
                    masks = masks.flip(-1)
                out[s] = SliceDetections(p["scores"].float().cpu().numpy(), p["labels"].cpu().numpy(),
                                         masks.cpu().numpy().astype(np.float16))
        results.append(out)
    return results


def compose_regions(passes: list[list[SliceDetections]], shape: tuple[int, int, int], scheme: str,
                    thresholds: list[float], mask_threshold: float = 0.5) -> np.ndarray:
    """Instances -> Bool [3, S, H, W] (WT, TC, ET), nested by construction.

    A class contributes its kept instances (score >= its threshold) to every region that contains its
    labels, so an enhancing detection is also core and whole tumour. Per region and pixel the soft
    masks are max-pooled over instances and averaged over TTA passes, then cut at ``mask_threshold``.
    """
    member = class_to_regions(scheme)
    prob = np.zeros((3, *shape), dtype=np.float32)
    for dets in passes:
        one = np.zeros_like(prob) if len(passes) > 1 else prob
        for s, d in enumerate(dets):
            for score, label, mask in zip(d.scores, d.labels, d.masks):
                if score < thresholds[int(label) - 1]:
                    continue
                for r in member[int(label) - 1]:
                    np.maximum(one[r, s], mask, out=one[r, s], casting="unsafe")
        if len(passes) > 1:
            prob += one / len(passes)
    return prob >= mask_threshold


def score_volume(passes: list[list[SliceDetections]], grid, thresholds, mask_threshold: float) -> np.ndarray:
    """Float32 [S, H, W]: the highest score of a kept detection whose mask covers each pixel."""
    out = np.zeros(grid, dtype=np.float32)
    for dets in passes:
        for s, d in enumerate(dets):
            for score, label, mask in zip(d.scores, d.labels, d.masks):
                if score >= thresholds[int(label) - 1]:
                    np.maximum(out[s], np.where(mask >= mask_threshold, score, 0), out=out[s])
    return out
