"""Radiological display from the affine: every picture shows the patient the same way, whatever the
voxel order on disk.

Volumes are reoriented to RAS+ voxel order with nibabel (``io_orientation``), then cut so that
axial and coronal panels show the patient's right on the screen's left (radiological convention),
anterior (axial) or superior (coronal, sagittal) at the top, and sagittal panels anterior on the left.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from gliomask.io.nifti import spacing_of

PLANES = ("axial", "coronal", "sagittal")
RAS_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # the RAS axis a plane cuts across
# Screen letters (left, right, top, bottom) per plane.
LETTERS = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"), "sagittal": ("A", "P", "S", "I")}


class RasVolume:
    """Arrays of one grid reoriented to RAS+ voxel order, with the voxel spacing per RAS axis."""

    def __init__(self, affine: np.ndarray, shape: tuple[int, ...]):
        affine = np.asarray(affine, dtype=float)
        self.affine = affine
        self.ornt = nib.orientations.io_orientation(affine)
        zooms = spacing_of(affine)
        self.spacing = np.empty(3)
        self.spacing[self.ornt[:, 0].astype(int)] = zooms
        self.shape = tuple(int(s) for s in shape[:3])

    def world(self, ras_index) -> np.ndarray:
        """Scanner mm (RAS+, through the affine) of a voxel given by its index in the RAS+ array."""
        ras_index = np.asarray(ras_index, dtype=float)
        index = np.empty(3)
        for axis, (target, flip) in enumerate(self.ornt):
            value = ras_index[int(target)]
            index[axis] = value if flip > 0 else self.shape[axis] - 1 - value
        return self.affine[:3, :3] @ index + self.affine[:3, 3]

    def __call__(self, volume: np.ndarray) -> np.ndarray:
        """Float/int [X, Y, Z] in the file's voxel order -> the same data in RAS+ voxel order."""
        return nib.orientations.apply_orientation(np.asarray(volume), self.ornt)


def plane_image(ras: np.ndarray, plane: str, index: int) -> np.ndarray:
    """The 2-D picture [rows, columns] of slice ``index`` of a RAS+ volume, as a radiologist views it."""
    if plane == "axial":
        return ras[::-1, ::-1, index].T
    if plane == "coronal":
        return ras[::-1, index, ::-1].T
    if plane == "sagittal":
        return ras[index, ::-1, ::-1].T
    raise ValueError(f"unknown plane {plane!r}")


def pixel_spacing(spacing: np.ndarray, plane: str) -> tuple[float, float]:
    """(row, column) spacing in mm of :func:`plane_image` for RAS spacing ``spacing``."""
    return {"axial": (spacing[1], spacing[0]), "coronal": (spacing[2], spacing[0]),
            "sagittal": (spacing[2], spacing[1])}[plane]
