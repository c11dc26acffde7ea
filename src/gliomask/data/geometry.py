"""The voxel geometry a model was trained on, and the way from an input's grid there and back.

Training cases share one voxel orientation (``prepare`` refuses a mixture) and about one spacing; the
checkpoint records both. At prediction an input stored otherwise (RAS instead of BraTS's LPS, permuted
axes, 0.5 or 2 mm voxels) is reoriented to the training orientation (nibabel ``io_orientation`` /
``ornt_transform``: axis permutations and flips, no interpolation) and, when its spacing differs by more
than ``SPACING_TOLERANCE``, resampled to the training spacing (linear for images); outputs come back
the same way (nearest neighbour for labels, linear for probabilities) onto the input's own grid.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from gliomask.errors import GliomaskError
from gliomask.io.nifti import spacing_of

SPACING_TOLERANCE = 0.10  # relative; BraTS's 1 mm grid against 0.9-1.1 mm passes unresampled


def orientation_of(affine: np.ndarray) -> str:
    """Axis codes of an affine's voxel axes, e.g. "LPS" for BraTS, "RAS" for nibabel's canonical."""
    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=float)))


def training_geometry(cases: list[dict]) -> dict:
    """{"orientation": codes, "spacing": [3] median mm} of prepared cases (each with an ``affine``).

    Raises when the cases do not share one orientation or their spacings differ by more than the
    tolerance: one model cannot learn axial slices that are coronal in half of its cases.
    """
    if not cases:
        raise GliomaskError("no cases to take the training geometry from")
    codes = {c["case"]: orientation_of(c["affine"]) for c in cases}
    if len(set(codes.values())) > 1:
        by = {}
        for case, code in codes.items():
            by.setdefault(code, []).append(case)
        listing = "; ".join(f"{code}: {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}" for code, ids in by.items())
        raise GliomaskError(f"cases are stored in different voxel orientations ({listing}); reorient them to one "
                            "(e.g. nibabel as_reoriented or fslreorient2std) before preparing")
    spacings = np.array([spacing_of(c["affine"]) for c in cases])
    median = np.median(spacings, axis=0)
    off = np.abs(spacings / median - 1).max(axis=1) > SPACING_TOLERANCE
    if off.any():
        bad = [c["case"] for c, o in zip(cases, off) if o]
        raise GliomaskError(f"cases differ in voxel spacing by more than {SPACING_TOLERANCE:.0%} (e.g. {', '.join(bad[:3])} "
                            f"against the median {median.round(3).tolist()} mm); resample them to one spacing first")
    return {"orientation": next(iter(codes.values())), "spacing": [round(float(s), 4) for s in median]}


def resample_to_shape(volume: np.ndarray, shape: tuple[int, int, int], order: int) -> np.ndarray:
    """Resample the last three axes of ``volume`` onto ``shape`` voxels covering the same extent
    (voxel centres at (i + 0.5) * n_in / n_out - 0.5). ``order`` 0 nearest, 1 linear."""
    src = volume.shape[-3:]
    coords = np.meshgrid(*[(np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5 for n_in, n_out in zip(src, shape)],
                         indexing="ij", sparse=False)
    flat = volume.reshape((-1,) + tuple(src))
    out = np.stack([ndimage.map_coordinates(v, coords, order=order, mode="nearest") for v in flat])
    return out.reshape(volume.shape[:-3] + tuple(shape))


class ModelGrid:
    """The way from one input grid (``affine``, ``shape``) to the training geometry and back.

    Volumes are [..., X, Y, Z] (any leading axes, e.g. channels). ``identity`` when nothing changes.
    """

    def __init__(self, affine: np.ndarray, shape, geometry: dict):
        affine = np.asarray(affine, dtype=float)
        self.shape = tuple(int(s) for s in shape[-3:])
        target = nib.orientations.axcodes2ornt(tuple(geometry["orientation"]))
        self.ornt = nib.orientations.ornt_transform(nib.io_orientation(affine), target)
        self.back = nib.orientations.ornt_transform(target, nib.io_orientation(affine))
        order = self.ornt[:, 0].astype(int)
        shape_r = np.empty(3, int)
        spacing_r = np.empty(3)
        shape_r[order] = self.shape
        spacing_r[order] = spacing_of(affine)
        self.reoriented_shape = tuple(int(s) for s in shape_r)
        ratio = spacing_r / np.asarray(geometry["spacing"], dtype=float)
        self.resampled = bool(np.any(np.abs(ratio - 1) > SPACING_TOLERANCE))
        self.model_shape = tuple(max(int(round(n * r)), 1) for n, r in zip(shape_r, ratio)) if self.resampled \
            else self.reoriented_shape
        self.reoriented = not np.array_equal(self.ornt, [[0, 1], [1, 1], [2, 1]])
        self.identity = not self.reoriented and not self.resampled

    def _orient(self, volume: np.ndarray, ornt) -> np.ndarray:
        lead = volume.ndim - 3
        full = np.concatenate([np.array([[i, 1] for i in range(lead)]).reshape(-1, 2),
                               np.column_stack([ornt[:, 0] + lead, ornt[:, 1]])]) if lead else ornt
        return np.ascontiguousarray(nib.orientations.apply_orientation(volume, full))

    def forward(self, volume: np.ndarray) -> np.ndarray:
        """Input grid -> training geometry (images: linear resampling)."""
        out = self._orient(volume, self.ornt) if self.reoriented else volume
        return resample_to_shape(out, self.model_shape, order=1).astype(volume.dtype, copy=False) \
            if self.resampled else out

    def backward(self, volume: np.ndarray, order: int) -> np.ndarray:
        """Training geometry -> the input's own grid (``order`` 0 for labels and masks, 1 for probabilities)."""
        out = volume
        if self.resampled:
            dtype = volume.dtype
            src = volume.astype(np.float32) if dtype == bool else volume
            out = resample_to_shape(src, self.reoriented_shape, order=order)
            out = out > 0.5 if dtype == bool else out.astype(dtype, copy=False)
        return self._orient(out, self.back) if self.reoriented else out
