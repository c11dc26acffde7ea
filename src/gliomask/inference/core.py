"""Running the slice network over a volume, and turning its outputs into 3-D region maps.

`volume_outputs` (network over a volume, planes fused) and `regions_from_probabilities` (cleaned,
nested WT/TC/ET maps) are the one path from a volume to a label map; validation, the post-processing
search and `predict` all go through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gliomask.data.dataset import context_stack, with_modality_flags
from gliomask.data.planes import from_plane, plane_view
from gliomask.inference.regions import postprocess
from gliomask.labels import class_to_regions


@dataclass
class SliceDetections:
    """Outputs on one slice: ``scores`` Float32 [N], ``labels`` Int64 [N] (1-based classes),
    ``masks`` Float16 [N, H, W] soft masks in [0, 1] (kept only for a model without a region head, which
    composes its regions from them; else [0, H, W]), ``regions`` Float16 [3, H, W] dense WT/TC/ET
    probabilities or None (model without a region head), ``score_map`` Float32 [H, W] the highest score of
    a detection whose mask covers each pixel (at the mask threshold), or None for an empty slice. TTA
    passes are flipped back. Keeping one score map instead of every detection's full-size mask is what
    bounds prediction memory on large grids (ten 512 x 512 masks per slice were 2 GB for 400 slices)."""

    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    regions: np.ndarray | None = None
    score_map: np.ndarray | None = None


@dataclass
class PostProcessing:
    """Settings from probabilities to label maps; chosen on validation predictions at the end of training.

    ``region_thresholds``: cut-off per region (WT, TC, ET) on its probability; ``min_lesion_score``: a 3-D
    whole-tumour component needs one detection at least this confident; ``min_component_voxels``:
    smaller 3-D components are removed (ET ones become core); ``min_case_et_voxels``: less ET in a
    case is relabelled core; ``fill_holes``: centres enclosed by tumour core (or whole tumour) join it
    (`gliomask.inference.regions.fill_enclosed`). ``score_thresholds``/``mask_threshold`` compose instance masks when the
    model has no region head.
    """

    region_thresholds: tuple[float, float, float] = (0.5, 0.5, 0.5)
    min_lesion_score: float = 0.5
    min_component_voxels: int = 20
    min_case_et_voxels: int = 0
    fill_holes: bool = True
    score_thresholds: tuple[float, ...] | None = None
    mask_threshold: float = 0.5

    @classmethod
    def from_config(cls, infer) -> "PostProcessing":
        """From an ``InferConfig``-like object (attributes of the same names)."""
        return cls(region_thresholds=tuple(infer.region_thresholds), min_lesion_score=infer.min_lesion_score,
                   min_component_voxels=infer.min_component_voxels, min_case_et_voxels=infer.min_case_et_voxels,
                   fill_holes=infer.fill_holes, score_thresholds=tuple(infer.score_thresholds) if infer.score_thresholds else None,
                   mask_threshold=infer.mask_threshold)


@torch.no_grad()
def detect_volume(model, volume: np.ndarray, *, batch_size: int = 8, device: str | torch.device = "cpu",
                  tta: bool = False, amp: bool = False, context: int = 0,
                  available: np.ndarray | None = None, mask_threshold: float = 0.5) -> list[list[SliceDetections]]:
    """Run ``model`` (eval mode) over every slice of ``volume`` that holds brain.

    Args:
        volume: Float [S, C, H, W] normalised slices (slicing axis first).
        context: neighbouring slices per side stacked as channels, as in training.
        available: Float [C] modality flags (1 present, 0 absent) for a model trained with
            ``model.modality_flags``; None for one without them.
        mask_threshold: where a detection's soft mask covers a pixel, for the score maps.
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
    flags = None if available is None else torch.as_tensor(np.asarray(available, dtype=np.float32))
    for flip in passes:
        out = [empty] * num
        for start in range(0, len(has_brain), batch_size):
            idx = has_brain[start:start + batch_size]
            batch = torch.from_numpy(np.stack([context_stack(volume, int(s), context) for s in idx]))
            if flags is not None:
                batch = with_modality_flags(batch, flags)
            batch = batch.to(device)
            if flip:
                batch = batch.flip(-1)
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                preds = model(list(batch))
            # One device-to-host copy per output and batch, not per slice (a GPU would wait on each copy);
            # float16 in torch: numpy's float32 -> float16 cast cost ~0.5 s per volume.
            counts = [len(p["scores"]) for p in preds]
            ends = np.cumsum(counts)
            scores_t = torch.cat([p["scores"].float() for p in preds])
            masks_t = torch.cat([p["masks"][:, 0] for p in preds])
            has_regions = preds[0].get("regions") is not None
            regions = torch.stack([p["regions"].half() for p in preds]) if has_regions else None
            if flip:
                masks_t = masks_t.flip(-1)
                regions = regions.flip(-1) if regions is not None else None
            maps = torch.zeros((len(preds), *masks_t.shape[1:]), dtype=torch.float32, device=masks_t.device)
            for k in range(len(preds)):
                lo, hi = ends[k] - counts[k], ends[k]
                if hi > lo:
                    covered = masks_t[lo:hi] >= mask_threshold
                    maps[k] = (covered * scores_t[lo:hi, None, None]).amax(dim=0)
            scores = scores_t.cpu().numpy()
            labels = torch.cat([p["labels"] for p in preds]).cpu().numpy()
            # a region head makes the regions: the masks are then needed only for the score maps
            masks = masks_t.half().cpu().numpy() if not has_regions else None
            maps = maps.cpu().numpy()
            regions = regions.cpu().numpy() if regions is not None else None
            no_masks = np.zeros((0, *volume.shape[2:]), np.float16)
            for k, s in enumerate(idx):
                lo, hi = ends[k] - counts[k], ends[k]
                out[s] = SliceDetections(scores[lo:hi], labels[lo:hi], no_masks if masks is None else masks[lo:hi],
                                         None if regions is None else regions[k], maps[k] if hi > lo else None)
        results.append(out)
    return results


def region_probabilities(passes: list[list[SliceDetections]], shape: tuple[int, int, int], scheme: str,
                         post: PostProcessing) -> np.ndarray:
    """Float32 [3, S, H, W] WT/TC/ET probabilities, averaged over TTA passes.

    From the dense region head when the model has one. Otherwise instance masks are max-pooled per
    region: a class kept by its score threshold contributes to every region that contains its labels.
    """
    prob = np.zeros((3, *shape), dtype=np.float32)
    member = class_to_regions(scheme)
    thresholds = post.score_thresholds or (0.5,) * len(member)
    for dets in passes:
        one = np.zeros_like(prob)
        for s, d in enumerate(dets):
            if d.regions is not None:
                one[:, s] = d.regions
                continue
            for score, label, mask in zip(d.scores, d.labels, d.masks):
                if score < thresholds[int(label) - 1]:
                    continue
                for r in member[int(label) - 1]:
                    np.maximum(one[r, s], mask, out=one[r, s], casting="unsafe")
        prob += one / len(passes)
    return prob


def score_volume(passes: list[list[SliceDetections]], grid) -> np.ndarray:
    """Float32 [S, H, W]: the highest score of any detection whose mask covers each pixel (the slices'
    score maps, over TTA passes)."""
    out = np.zeros(grid, dtype=np.float32)
    for dets in passes:
        for s, d in enumerate(dets):
            if d.score_map is not None:
                np.maximum(out[s], d.score_map, out=out[s], casting="unsafe")
    return out


def regions_from_probabilities(prob: np.ndarray, scores: np.ndarray, post: PostProcessing) -> np.ndarray:
    """Float [3, ...] probabilities + Float [...] detection scores -> cleaned, nested Bool [3, ...]."""
    regions = np.stack([prob[r] >= post.region_thresholds[r] for r in range(3)])
    return postprocess(regions, scores, min_voxels=post.min_component_voxels, min_lesion_score=post.min_lesion_score,
                       min_case_et_voxels=post.min_case_et_voxels, fill_holes=post.fill_holes)


def volume_outputs(model, volume: np.ndarray, *, scheme: str, post: PostProcessing, dims=(0,), batch_size: int = 8,
                   device="cpu", amp: bool = False, context: int = 0, tta: bool = False,
                   available: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the network over ``volume`` Float [S, C, A, B] in each plane of ``dims`` (see `gliomask.data.planes`).

    Returns (Float32 [3, S, A, B] region probabilities averaged over the planes, Float32 [S, A, B] the
    highest detection score covering each voxel in any plane). ``available``: see `detect_volume`.
    """
    prob = np.zeros((3, volume.shape[0], *volume.shape[2:]), dtype=np.float32)
    scores = np.zeros(prob.shape[1:], dtype=np.float32)
    for dim in dims:
        view = plane_view(volume, dim)
        passes = detect_volume(model, view, batch_size=batch_size, device=device, amp=amp, context=context, tta=tta,
                               available=available, mask_threshold=post.mask_threshold)
        shape = (view.shape[0], *view.shape[2:])
        prob += from_plane(region_probabilities(passes, shape, scheme, post), dim) / len(dims)
        np.maximum(scores, from_plane(score_volume(passes, shape), dim), out=scores)
    return prob, scores
