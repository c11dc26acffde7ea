"""BraTS label semantics: regions WT/TC/ET, label maps to regions and back, label conventions.

Internally gliomask uses the BraTS 2017-2021 labels: 1 necrotic / non-enhancing core, 2 oedema,
4 enhancing. BraTS 2023+ writes enhancing as 3 (`to_convention`).
"""

from __future__ import annotations

import numpy as np

REGIONS = (("WT", (1, 2, 4)), ("TC", (1, 4)), ("ET", (4,)))
REGION_NAMES = tuple(name for name, _ in REGIONS)
STRUCTURE_3D = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity, as BraTS lesion-wise scoring


def regions_from_labels(seg: np.ndarray) -> np.ndarray:
    """Integer label map (internal 0/1/2/4) -> Bool [3, ...] for WT, TC, ET."""
    seg = np.asarray(seg)
    # One comparison per label value: several times faster than np.isin or a look-up table (which
    # casts 9 million uint8 indices to int64) on a full volume.
    return np.stack([label_mask(seg, values) for _, values in REGIONS])


def label_mask(seg: np.ndarray, values) -> np.ndarray:
    """Bool array: where ``seg`` holds any of ``values``."""
    out = np.zeros(seg.shape, dtype=bool)
    for v in values:
        out |= seg == v
    return out


def labels_from_regions(regions: np.ndarray) -> np.ndarray:
    """Bool [3, ...] nested regions -> UInt8 label map: 2 oedema, 1 core, 4 enhancing."""
    wt, tc, et = regions
    seg = np.zeros(wt.shape, dtype=np.uint8)
    seg[wt] = 2
    seg[tc] = 1
    seg[et] = 4
    return seg


def to_convention(seg: np.ndarray, convention: str) -> np.ndarray:
    """Internal labels -> ``brats2019`` (0/1/2/4) or ``brats2023`` (0/1/2/3)."""
    if convention == "brats2019":
        return seg
    if convention == "brats2023":
        out = seg.copy()
        out[out == 4] = 3
        return out
    raise ValueError(convention)
