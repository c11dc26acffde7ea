"""From a 2-D label slice to Mask R-CNN instances: one instance per connected lesion and class."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gliomask.labels import CLASS_SCHEMES, STRUCTURE_2D, label_mask


def slice_instances(seg: np.ndarray, scheme: str = "regions", min_area: int = 1):
    """Split a label slice into instances.

    Args:
        seg: UInt8 [H, W] internal labels (0/1/2/4).
    Returns:
        masks UInt8 [N, H, W], labels Int64 [N] (1-based class ids), boxes Float32 [N, 4] xyxy
        with exclusive max (x2 = last column + 1). Components smaller than ``min_area`` pixels are
        dropped; N = 0 is allowed.
    """
    masks, labels, boxes = [], [], []
    for class_id, (_, values) in enumerate(CLASS_SCHEMES[scheme], start=1):
        region = label_mask(seg, values)
        if not region.any():
            continue
        components, count = ndimage.label(region, structure=STRUCTURE_2D)
        areas = np.bincount(components.ravel(), minlength=count + 1)
        for index, box in enumerate(ndimage.find_objects(components), start=1):
            if areas[index] < min_area:
                continue
            masks.append(components == index)
            labels.append(class_id)
            boxes.append([box[1].start, box[0].start, box[1].stop, box[0].stop])
    h, w = seg.shape
    if not masks:
        return np.zeros((0, h, w), np.uint8), np.zeros((0,), np.int64), np.zeros((0, 4), np.float32)
    return np.stack(masks).astype(np.uint8), np.asarray(labels, np.int64), np.asarray(boxes, np.float32)
