"""Validation through the prediction path, sharded across ranks, and post-processing chosen once on it.

During training, validation runs at fixed settings (no search) and only while it costs little. At the
end of training the post-processing (region thresholds, lesion score, component sizes, ET cut-off) is
chosen on the validation fold's predictions, as nnU-Net's ``determine_postprocessing`` does, and saved
in the checkpoint apart from the config.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from gliomask.data.dataset import available_modalities, context_stack, with_modality_flags
from gliomask.engine import distributed as dist_utils
from gliomask.evaluation.lesionwise import lesionwise
from gliomask.evaluation.metrics import dice
from gliomask.inference.core import PostProcessing, regions_from_probabilities, volume_outputs
from gliomask.labels import REGION_NAMES, regions_from_labels
from gliomask.utils import bounding_box

REGION_CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7)
SEARCH = (  # (field, candidates, region index judged or None for the mean of the three)
    ("min_lesion_score", (0.0, 0.3, 0.5, 0.7, 0.9), None),
    ("min_component_voxels", (0, 20, 100, 500), None),
    ("min_case_et_voxels", (0, 100, 250, 500, 1000), 2),
    ("fill_holes", (False, True), None),
)


def case_flags(prepared, case_id: str, flags: bool) -> np.ndarray | None:
    """Float32 [C] modality flags of a prepared case (1 present, 0 absent), or None for a model without them."""
    if not flags:
        return None
    modalities = list(prepared.settings["modalities"])
    present = available_modalities(prepared.case_meta(case_id), modalities)
    return np.array([m in present for m in modalities], dtype=np.float32)


def case_outputs(model, prepared, case_id: str, *, scheme: str, context: int, post: PostProcessing, batch_size: int,
                 device, amp: bool = False, dims=(0,), flags: bool = False, available: np.ndarray | None = None,
                 tta: bool = False):
    """(Float16 [3, ...] probabilities, Float16 [...] detection scores, Bool [3, ...] reference), cropped
    to the box holding the reference and every voxel any candidate threshold could call tumour: Dice
    and components are the same as on the whole volume, and the search runs many times faster.
    ``available`` (Float [C] flags) hides modalities the case has, to measure a subset; default: the
    case's own (`case_flags`). ``tta``: the flipped pass averaged in, as `predict` does with ``infer.tta``."""
    volume, seg = prepared.arrays(case_id)
    if available is None:
        available = case_flags(prepared, case_id, flags)
    prob, scores = volume_outputs(model, volume, scheme=scheme, post=post, dims=dims, batch_size=batch_size,
                                  device=device, amp=amp, context=context, available=available, tta=tta)
    ref = regions_from_labels(np.asarray(seg))
    lowest = min(min(REGION_CANDIDATES), *post.region_thresholds)
    box = bounding_box((prob.max(axis=0) >= lowest) | ref.any(axis=0)) or tuple(slice(0, 1) for _ in ref.shape[1:])
    return prob[(slice(None), *box)].astype(np.float16), scores[box].astype(np.float16), ref[(slice(None), *box)]


def _case_dice(outputs, post: PostProcessing, lesionwise_too: bool = False) -> list[list[float]]:
    """Per validation case, each region's Dice; with ``lesionwise_too`` the mean of the Dice and the
    BraTS 2023 lesion-wise Dice, which charges every false-positive component (the ranking's measure)."""
    out = []
    for prob, scores, ref in outputs:
        pred = regions_from_probabilities(prob, scores, post)
        row = [dice(pred[r], ref[r]) for r in range(3)]
        if lesionwise_too:
            row = [(d + lesionwise(pred[r], ref[r], with_hd95=False)["lesion_dice"]) / 2 for r, d in enumerate(row)]
        out.append(row)
    return out


def _gathered(rows: list) -> list:
    """Every rank's rows, in rank order (all ranks get the same list)."""
    return [row for part in dist_utils.all_gather_object(rows) for row in part]


def validate(model, prepared, case_ids: list[str], *, scheme: str, context: int, post: PostProcessing,
             batch_size: int, device, amp: bool = False, keep_outputs: bool = False, dims=(0,), flags: bool = False,
             tta: bool = False):
    """Dice per region over whole validation volumes, as `predict` would produce them at ``post``.

    Cases are sharded across ranks (``case_ids[rank::world]``) and the per-case figures gathered, so
    every rank returns the same result. With ``keep_outputs`` the rank's own outputs come back too.
    ``tta``: with the flipped pass (the final validation, whose outputs choose the post-processing).
    """
    t0 = time.monotonic()
    mine = case_ids[dist_utils.rank()::dist_utils.world_size()]
    outputs = [case_outputs(model, prepared, cid, scheme=scheme, context=context, post=post, batch_size=batch_size,
                            device=device, amp=amp, dims=dims, flags=flags, tta=tta) for cid in mine]
    rows = _gathered(_case_dice(outputs, post))
    result = summarise(rows)
    result["seconds"] = dist_utils.all_reduce_max(time.monotonic() - t0, device)
    return (result, outputs) if keep_outputs else result


def summarise(rows: list[list[float]]) -> dict:
    result = {f"dice_{n}": float(np.mean([r[i] for r in rows])) if rows else float("nan") for i, n in enumerate(REGION_NAMES)}
    result["dice_mean"] = float(np.mean([result[f"dice_{n}"] for n in REGION_NAMES]))
    result["cases"] = len(rows)
    return result


def tune_postprocessing(outputs, start: PostProcessing, deadline: float | None = None) -> tuple[PostProcessing, dict]:
    """Coordinate search over the post-processing on the validation outputs (each rank holds its shard).

    Region thresholds are judged on each region's raw Dice; the other settings through the whole
    `regions_from_probabilities` path, by the mean of Dice and BraTS 2023 lesion-wise Dice (which counts
    every false-positive component: tuned on Dice alone, one validation patient chose to keep speckle). A candidate replaces the current value only when it raises the
    mean Dice over the validation cases by more than 1e-4, so ties keep the defaults.

    ``deadline`` (a `time.monotonic` time, e.g. the end of ``train.max_minutes``): once it has passed on any
    rank, every rank stops trying candidates and keeps what it has chosen; the summary's ``search_complete``
    says whether the search ran to its end.
    """
    def out_of_time() -> bool:  # decided together: the ranks must run the same collectives
        return deadline is not None and any(dist_utils.all_gather_object(time.monotonic() > deadline))

    post = start
    thresholds = list(start.region_thresholds)
    complete = not out_of_time()
    for r in range(3 if complete else 0):
        scores = []
        for t in REGION_CANDIDATES:
            rows = _gathered([dice(prob[r] >= t, ref[r]) for prob, _, ref in outputs])
            scores.append(float(np.mean(rows)) if rows else 0.0)
        base = scores[REGION_CANDIDATES.index(thresholds[r])] if thresholds[r] in REGION_CANDIDATES else -1.0
        best = int(np.argmax(scores))
        if scores[best] > base + 1e-4:
            thresholds[r] = REGION_CANDIDATES[best]
    post = replace(post, region_thresholds=tuple(thresholds))
    for name, candidates, region in SEARCH:
        complete = complete and not out_of_time()
        if not complete:
            break

        def score(p):  # speckle barely moves the voxel Dice but ruins lesion-wise figures: judge both
            rows = _gathered(_case_dice(outputs, p, lesionwise_too=True))
            per = np.asarray(rows) if rows else np.zeros((1, 3))
            return float(per[:, region].mean() if region is not None else per.mean())
        current = score(post)
        for value in candidates:
            if value == getattr(post, name):
                continue
            if out_of_time():
                complete = False
                break
            trial = replace(post, **{name: value})
            s = score(trial)
            if s > current + 1e-4:
                post, current = trial, s
    return post, {**summarise(_gathered(_case_dice(outputs, post))), "search_complete": complete}


def estimate_seconds(model, prepared, case_ids: list[str], *, context: int, batch_size: int, device, amp=False,
                     dims=(0,), flags: bool = False, tta: bool = False) -> float:
    """Seconds this rank will need to validate its shard of ``case_ids``: one timed batch, extrapolated
    (twice the slices with ``tta``, whose flipped pass doubles the forward passes)."""
    mine = case_ids[dist_utils.rank()::dist_utils.world_size()]
    if not mine:
        return 0.0
    import torch

    volume, _ = prepared.arrays(mine[0])
    brain = [s for s in range(volume.shape[0]) if np.abs(np.asarray(volume[s], dtype=np.float32)).max() > 0]
    probe = brain[len(brain) // 2:len(brain) // 2 + 4] or brain[:4]
    if not probe:
        return 0.0
    model.eval()
    batch = torch.from_numpy(np.stack([context_stack(volume, s, context) for s in probe]))
    if flags:
        batch = with_modality_flags(batch, torch.from_numpy(case_flags(prepared, mine[0], flags)))
    batch = batch.to(device)
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=amp):
        t0 = time.monotonic()
        model(list(batch))
        per_slice = (time.monotonic() - t0) / len(probe)
    # Every plane's slices cost about the same per voxel: scale the native count by the planes used.
    slices = sum(prepared.arrays(c)[0].shape[0] for c in mine) * len(dims) * (2 if tta else 1)
    model.train()
    # Prediction of every slice, plus labelling and the post-processing search (about 1 s per case).
    return per_slice * slices + 1.0 * len(mine)


RESERVE_SHARE = 0.75  # the most of train.max_minutes that training leaves to the final validation


def validation_reserve(estimate: float, budget: float) -> tuple[float, bool]:
    """Seconds of a ``train.max_minutes`` budget the training loop leaves for the final validation and the
    post-processing search: 1.25 x the ``estimate`` (`estimate_seconds`), at most RESERVE_SHARE of the budget
    so that training keeps a quarter of it. True when that cap binds: the validation may then overrun the
    budget by what the estimate says beyond it (the search itself stops at the budget's end)."""
    wanted = 1.25 * estimate
    return min(wanted, RESERVE_SHARE * budget), wanted > RESERVE_SHARE * budget
