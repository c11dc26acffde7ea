"""Intensity normalisation shared by preparation, training and prediction."""

from __future__ import annotations

import numpy as np

DEFAULT_CLIP = (0.5, 99.5)


def brain_mask(images: np.ndarray) -> np.ndarray:
    """Bool [X, Y, Z]: voxels where any modality is non-zero (BraTS is skull-stripped, background 0)."""
    return np.any(images != 0, axis=0)


def normalize_case(images: np.ndarray, mask: np.ndarray, clip=DEFAULT_CLIP) -> np.ndarray:
    """Per modality inside ``mask``: clip to percentiles, then z-score; zero outside the brain.

    images Float32 [C, ...]; returns Float32 of the same shape.
    """
    out = np.zeros(images.shape, dtype=np.float32)
    for c in range(images.shape[0]):
        values = images[c][mask]
        if values.size == 0:
            continue
        lo, hi = np.percentile(values, clip)
        values = np.clip(values, lo, hi)
        std = float(values.std())
        out[c][mask] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out


def brain_crop(mask: np.ndarray, margin: int = 2) -> list[list[int]]:
    """[[lo, hi], ...] per axis: the brain's bounding box grown by ``margin`` voxels, clipped to the volume."""
    crop = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        if present.size == 0:
            crop.append([0, mask.shape[axis]])
        else:
            crop.append([max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, mask.shape[axis])])
    return crop
