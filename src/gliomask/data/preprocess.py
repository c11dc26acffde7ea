"""One preprocessing path from a case's images to network slices, and its inverse, for preparation
and prediction alike: brain mask, brain crop, per-modality clip and z-score, slicing axis first.
`Preprocessed.restore` puts slice-space results back on the full volume's grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliomask.data.normalize import brain_crop, brain_mask, normalize_case
from gliomask.errors import GliomaskError


@dataclass
class Preprocessed:
    """``volume`` Float32 [S, C, H, W]: normalised slices along ``axis``, inside the brain ``crop``;
    ``brain`` Bool [S, H, W] on the same grid; ``crop`` [[lo, hi]] per array axis; ``shape`` the full
    volume's [X, Y, Z]."""

    volume: np.ndarray
    brain: np.ndarray
    crop: list[list[int]]
    axis: int
    shape: tuple[int, int, int]

    @property
    def box(self) -> tuple[slice, slice, slice]:
        return tuple(slice(lo, hi) for lo, hi in self.crop)

    def to_slices(self, array: np.ndarray) -> np.ndarray:
        """[..., X, Y, Z] on the full grid (e.g. a label map) -> [..., S, H, W] like ``volume``."""
        lead = array.ndim - 3
        cropped = array[(slice(None),) * lead + self.box]
        return np.ascontiguousarray(np.moveaxis(cropped, lead + self.axis, lead))

    def restore(self, array: np.ndarray, fill=0) -> np.ndarray:
        """[..., S, H, W] in slice space -> [..., X, Y, Z] on the full grid, ``fill`` outside the crop."""
        lead = array.ndim - 3
        shape = (*array.shape[:lead], *self.shape)
        # np.zeros takes already-zeroed pages from the OS; np.full writes every voxel (0.2 s per case)
        out = np.zeros(shape, dtype=array.dtype) if fill == 0 else np.full(shape, fill, dtype=array.dtype)
        out[(slice(None),) * lead + self.box] = np.moveaxis(array, lead, lead + self.axis)
        return out


def preprocess(images: np.ndarray, *, axis: int, clip_percentiles, crop_margin: int,
               source: str | Path | None = None) -> Preprocessed:
    """Float32 [C, X, Y, Z] raw intensities (background exactly 0) -> `Preprocessed`."""
    mask = brain_mask(images)
    if not mask.any():
        raise GliomaskError("image is empty (no non-zero voxel in any modality)", source)
    crop = brain_crop(mask, crop_margin)
    pre = Preprocessed(np.empty(0), np.empty(0), crop, axis, tuple(images.shape[1:]))
    norm = normalize_case(images[(slice(None), *pre.box)], mask[pre.box], tuple(clip_percentiles))
    pre.volume = np.ascontiguousarray(np.moveaxis(norm, axis + 1, 0))
    pre.brain = pre.to_slices(mask)
    return pre
