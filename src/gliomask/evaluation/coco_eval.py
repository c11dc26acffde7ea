"""Slice-level COCO AP (bbox and segm) of the detector on a prepared split, via pycocotools."""

from __future__ import annotations

import contextlib
import io

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from gliomask.data.coco import coco_dict, encode_mask


def coco_from_dict(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_ap(gt: dict, results: list[dict]) -> dict[str, float]:
    """AP, AP50, AP75 for bbox and segm. ``results``: COCO result dicts (image_id, category_id,
    score, bbox xywh, segmentation RLE)."""
    coco_gt = coco_from_dict(gt)
    out = {}
    for iou_type in ("bbox", "segm"):
        if not results:
            out.update({f"{iou_type}_AP": 0.0, f"{iou_type}_AP50": 0.0, f"{iou_type}_AP75": 0.0})
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[f"{iou_type}_AP"] = float(ev.stats[0])
        out[f"{iou_type}_AP50"] = float(ev.stats[1])
        out[f"{iou_type}_AP75"] = float(ev.stats[2])
    return out


@torch.no_grad()
def detector_results(model, prepared, case_ids: list[str], *, device="cpu", batch_size: int = 8,
                     mask_threshold: float = 0.5, scheme: str | None = None, context: int = 0,
                     flags: bool = False) -> tuple[dict, list[dict]]:
    """Run the detector on the kept slices of ``case_ids``; returns (COCO GT dict, COCO results).
    ``scheme``: the detector's classes; ``context``: its neighbouring slices per side; ``flags``: the
    model reads modality flags (each case's own modalities marked present)."""
    from gliomask.data.dataset import available_modalities, context_stack, with_modality_flags

    gt = coco_dict(prepared, case_ids, scheme)
    model.eval()
    results = []
    by_case: dict[str, list[dict]] = {}
    for image in gt["images"]:
        by_case.setdefault(image["case"], []).append(image)
    for cid, images in by_case.items():
        volume, _ = prepared.arrays(cid)
        modalities = list(prepared.settings["modalities"])
        present = available_modalities(prepared.case_meta(cid), modalities)
        marks = torch.tensor([m in present for m in modalities], dtype=torch.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            batch = [torch.from_numpy(context_stack(volume, im["slice"], context)) for im in chunk]
            batch = [(with_modality_flags(im, marks) if flags else im).to(device) for im in batch]
            for im, pred in zip(chunk, model(batch)):
                for box, score, label, mask in zip(pred["boxes"].cpu().numpy(), pred["scores"].cpu().numpy(),
                                                   pred["labels"].cpu().numpy(), pred["masks"][:, 0].cpu().numpy()):
                    x1, y1, x2, y2 = box.tolist()
                    results.append({"image_id": im["id"], "category_id": int(label), "score": float(score),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "segmentation": encode_mask(mask >= mask_threshold)})
    return gt, results


def coco_ap_for_checkpoint(prepared_dir, fold: int | None, checkpoint, *, device: str = "cpu") -> dict[str, float]:
    """COCO AP of a checkpoint's detector on the validation slices of ``fold`` (every case if it has none)."""
    from gliomask.data.prepared import Prepared
    from gliomask.errors import GliomaskError
    from gliomask.models.checkpoint import load_checkpoint
    from gliomask.models.factory import model_from_checkpoint, resolve_device

    if checkpoint is None:
        raise GliomaskError("--coco needs -m CHECKPOINT")
    prepared = Prepared.open(prepared_dir)
    meta = load_checkpoint(checkpoint)
    if tuple(prepared.settings["modalities"]) != tuple(meta["modalities"]):
        raise GliomaskError("the checkpoint was trained on other modalities than this prepared data", checkpoint)
    _, val = prepared.split(fold)
    cases = val or prepared.case_ids
    refuse_training_overlap(meta, cases, checkpoint)
    model, cfg = model_from_checkpoint(meta, str(checkpoint))
    device = resolve_device(device)
    gt, results = detector_results(model.to(device), prepared, cases, device=device, scheme=meta["scheme"],
                                   context=int(meta.get("context", 0)), flags=cfg.model.modality_flags)
    return coco_ap(gt, results)


def refuse_training_overlap(checkpoint: dict, case_ids, source) -> None:
    """An evaluation must not include a patient the checkpoint was trained on."""
    from gliomask.errors import GliomaskError

    trained = set((checkpoint.get("provenance") or {}).get("train_cases") or [])
    overlap = sorted(trained & set(case_ids))
    if overlap:
        raise GliomaskError(f"the checkpoint was trained on {len(overlap)} of the evaluated cases "
                            f"({', '.join(overlap[:3])}{' ...' if len(overlap) > 3 else ''}); "
                            "evaluate on patients it never saw", source)
