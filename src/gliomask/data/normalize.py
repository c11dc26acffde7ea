"""Intensity normalisation shared by preparation, training and prediction."""

from __future__ import annotations

import numpy as np

from gliomask.utils import bounding_box

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
    """[[lo, hi], ...] per axis: the brain's bounding box grown by ``margin`` voxels, clipped to the volume
    (the whole volume when there is no brain)."""
    box = bounding_box(mask, pad=margin) or tuple(slice(0, n) for n in mask.shape)
    return [[int(s.start), int(s.stop)] for s in box]
