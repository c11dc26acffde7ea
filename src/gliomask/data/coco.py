"""COCO export of a prepared split: image ids from 1, RLE masks, areas equal to mask pixel counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from gliomask.data.instances import slice_instances
from gliomask.errors import GliomaskError
from gliomask.labels import class_names
from gliomask.data.prepared import Prepared
from gliomask.utils import write_json


def encode_mask(mask: np.ndarray) -> dict:
    """UInt8 [H, W] -> COCO RLE with a str ``counts`` (JSON-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def split_slices(prepared: Prepared, case_ids: list[str]) -> list[tuple[str, int]]:
    """(case, slice) pairs of the kept slices of ``case_ids``, in a stable order."""
    return [(cid, int(s)) for cid in case_ids for s in prepared.case_meta(cid)["slices"]]


def coco_dict(prepared: Prepared, case_ids: list[str], scheme: str | None = None) -> dict:
    """Ground truth of the kept slices of ``case_ids`` as a COCO dataset dict (classes of ``scheme``,
    by default the prepared one)."""
    scheme = scheme or prepared.settings["scheme"]
    min_area = prepared.settings["min_area"]
    images, annotations = [], []
    seg_cache: dict[str, np.ndarray] = {}
    for image_id, (cid, s) in enumerate(split_slices(prepared, case_ids), start=1):
        if cid not in seg_cache:
            seg_cache = {cid: prepared.arrays(cid)[1]}
        seg = np.asarray(seg_cache[cid][s])
        h, w = seg.shape
        images.append({"id": image_id, "file_name": f"{cid}/{s:03d}", "height": h, "width": w,
                       "case": cid, "slice": s})
        masks, labels, boxes = slice_instances(seg, scheme, min_area)
        for m, lab, b in zip(masks, labels, boxes):
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(lab),
                "segmentation": encode_mask(m), "area": int(m.sum()),
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], "iscrowd": 0,
            })
    categories = [{"id": i, "name": n, "supercategory": "tumour"} for i, n in enumerate(class_names(scheme), start=1)]
    return {"info": {"description": "gliomask slices", "source": str(prepared.root)},
            "images": images, "annotations": annotations, "categories": categories}


def export_coco(prepared: Prepared | str | Path, out: str | Path, *, fold: int | None = None, split: str = "val") -> Path:
    """Write the COCO JSON of ``split`` ("train", "val" or "all") of ``fold``."""
    if split == "val" and fold is None:  # without a fold every case trains: the file would be empty
        raise GliomaskError("the val split needs a fold (--fold N); without one every case is a training case")
    if not isinstance(prepared, Prepared):
        prepared = Prepared.open(prepared)
    train, val = prepared.split(fold)
    ids = {"train": train, "val": val, "all": prepared.case_ids}[split]
    write_json(out, coco_dict(prepared, ids))
    return Path(out)
