"""Per-lesion report: 3-D connected components of the whole tumour, measured in voxels and in mm.

The records' keys, frames and files are those of :mod:`gliomask.io.lesion_table`.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from gliomask.io.lesion_table import FRAMES
from gliomask.labels import NECROTIC, OEDEMA, REGION_LABELS, STRUCTURE_3D, label_mask


def lesion_report(labels: np.ndarray, affine: np.ndarray, spacing, *, scores: np.ndarray | None = None,
                  slice_axis: int = 2, probabilities: np.ndarray | None = None, frame: str = "ras",
                  components: np.ndarray | None = None) -> list[dict]:
    """Describe each 26-connected whole-tumour component of an internal label map (0/1/2/4).

    ``scores`` Float [X, Y, Z]: the highest detection score covering each voxel (0 where none).
    ``probabilities`` Float [X, Y, Z]: the whole-tumour probability; its mean over the lesion is reported.
    Lesions are numbered from 1 by decreasing volume. Volumes are voxel counts times the voxel volume;
    millimetre positions go through ``affine`` (scanner space of the input), in ``frame`` (ras or lps).
    ``components`` Int [X, Y, Z] (0 outside lesions): lesion identities found elsewhere, e.g. on the grid
    the model predicted on and mapped back to a coarser one, where one lesion can fall apart into
    pieces that are not lesions of their own; default: the label map's 26-connected components.
    Returns flat dicts with the keys of :func:`gliomask.io.lesion_table.csv_fields` (score keys only when given).
    """
    if frame not in FRAMES:
        raise ValueError(f"unknown frame {frame!r}; choose ras or lps")
    affine = np.asarray(affine, dtype=float) if affine is not None else np.diag([*spacing, 1.0])
    to_frame = np.diag([-1.0, -1.0, 1.0]) if frame == "lps" else np.eye(3)
    # The voxel volume from the affine itself: for an oblique or sheared grid |det| differs from the
    # product of the header's zooms.
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    if components is None:
        components, count = ndimage.label(label_mask(labels, REGION_LABELS["WT"]), structure=STRUCTURE_3D)
    else:  # consecutive ids for the lesions present (a small one may not survive the mapping)
        ids, components = np.unique(np.where(label_mask(labels, REGION_LABELS["WT"]), components, 0), return_inverse=True)
        components = components.reshape(labels.shape) - (0 if ids[0] == 0 else -1)
        count = len(ids) - (1 if ids[0] == 0 else 0)
    if count == 0:
        return []
    objects = ndimage.find_objects(components)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    lesions = []
    for index in sorted(range(1, count + 1), key=lambda i: -sizes[i]):
        box = objects[index - 1]
        inside = components[box] == index
        sub = labels[box][inside]
        centroid = np.array(ndimage.center_of_mass(inside)) + [s.start for s in box]
        lo = np.array([s.start for s in box])
        hi = np.array([s.stop - 1 for s in box])
        corners = np.array(list(itertools.product(*zip(lo, hi))), dtype=float)
        corners_mm = (to_frame @ (affine[:3, :3] @ corners.T + affine[:3, 3:4])).T
        centre_mm = to_frame @ (affine[:3, :3] @ centroid + affine[:3, 3])
        lesion = {"id": len(lesions) + 1, "voxels": int(sizes[index]),
                  "volume_ml": round(int(sizes[index]) * voxel_ml, 4)}
        for a, value in zip("xyz", centre_mm):
            lesion[f"centroid_{a}_{frame}_mm"] = round(float(value), 2)
        for a, value in zip("ijk", centroid):
            lesion[f"centroid_{a}_voxel"] = round(float(value), 2)
        for bound, values in (("min", corners_mm.min(axis=0)), ("max", corners_mm.max(axis=0))):
            for a, value in zip("xyz", values):
                lesion[f"bbox_{a}_{bound}_{frame}_mm"] = round(float(value), 2)
        for bound, values in (("min", lo), ("max", hi)):
            for a, value in zip("ijk", values):
                lesion[f"bbox_{a}_{bound}_voxel"] = int(value)
        lesion["first_slice"], lesion["last_slice"] = int(lo[slice_axis]), int(hi[slice_axis])
        if scores is not None:
            s = scores[box][inside]
            lesion["max_score"] = round(float(s.max()), 4)
            lesion["mean_score"] = round(float(s.mean()), 4)
        if probabilities is not None:
            lesion["mean_probability"] = round(float(probabilities[box][inside].mean()), 4)
        lesion["enhancing_ml"] = round(int(label_mask(sub, REGION_LABELS["ET"]).sum()) * voxel_ml, 4)
        lesion["tumour_core_ml"] = round(int(label_mask(sub, REGION_LABELS["TC"]).sum()) * voxel_ml, 4)
        lesion["necrotic_nonenhancing_core_ml"] = round(int((sub == NECROTIC).sum()) * voxel_ml, 4)
        lesion["oedema_ml"] = round(int((sub == OEDEMA).sum()) * voxel_ml, 4)
        lesions.append(lesion)
    return lesions
