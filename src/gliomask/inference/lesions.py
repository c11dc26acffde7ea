"""Per-lesion report: 3-D connected components of the whole tumour, measured in voxels and in mm."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
from scipy import ndimage

from gliomask.io.atomic import atomic_path
from gliomask.labels import NECROTIC, OEDEMA, REGION_LABELS, STRUCTURE_3D, label_mask
from gliomask.utils import write_json

CSV_FIELDS = ["id", "voxels", "volume_ml", "centroid_voxel", "centroid_mm", "bbox_voxel", "bbox_mm",
              "slice_range", "max_score", "mean_score", "mean_probability", "et_ml", "tc_ml", "necrosis_ml", "oedema_ml"]


def lesion_report(labels: np.ndarray, affine: np.ndarray, spacing, *, scores: np.ndarray | None = None,
                  slice_axis: int = 2, probabilities: np.ndarray | None = None) -> list[dict]:
    """Describe each 26-connected whole-tumour component of an internal label map (0/1/2/4).

    ``scores`` Float [X, Y, Z]: the highest detection score covering each voxel (0 where none).
    ``probabilities`` Float [X, Y, Z]: the whole-tumour probability; its mean over the lesion is reported.
    Lesions are numbered from 1 by decreasing volume. Volumes are voxel counts times the voxel volume;
    millimetre positions go through ``affine`` (scanner space of the input).
    """
    # The voxel volume from the affine itself: for an oblique or sheared grid |det| differs from the
    # product of the header's zooms.
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3]))) / 1000.0 if affine is not None \
        else float(np.prod(spacing)) / 1000.0
    components, count = ndimage.label(labels > 0, structure=STRUCTURE_3D)
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
        corners_mm = (affine[:3, :3] @ corners.T).T + affine[:3, 3]
        lesion = {
            "id": len(lesions) + 1,
            "voxels": int(sizes[index]),
            "volume_ml": round(int(sizes[index]) * voxel_ml, 4),
            "centroid_voxel": [round(float(c), 2) for c in centroid],
            "centroid_mm": [round(float(c), 2) for c in affine[:3, :3] @ centroid + affine[:3, 3]],
            "bbox_voxel": [lo.tolist(), hi.tolist()],
            "bbox_mm": [corners_mm.min(axis=0).round(2).tolist(), corners_mm.max(axis=0).round(2).tolist()],
            "slice_range": [int(lo[slice_axis]), int(hi[slice_axis])],
            "et_ml": round(int(label_mask(sub, REGION_LABELS["ET"]).sum()) * voxel_ml, 4),
            "tc_ml": round(int(label_mask(sub, REGION_LABELS["TC"]).sum()) * voxel_ml, 4),
            "necrosis_ml": round(int((sub == NECROTIC).sum()) * voxel_ml, 4),
            "oedema_ml": round(int((sub == OEDEMA).sum()) * voxel_ml, 4),
        }
        if scores is not None:
            s = scores[box][inside]
            lesion["max_score"] = round(float(s.max()), 4)
            lesion["mean_score"] = round(float(s.mean()), 4)
        if probabilities is not None:
            lesion["mean_probability"] = round(float(probabilities[box][inside].mean()), 4)
        lesions.append(lesion)
    return lesions


def write_lesion_report(lesions: list[dict], json_path: Path, csv_path: Path, *, case_id: str, extra: dict | None = None) -> None:
    write_json(json_path, {"case": case_id, **(extra or {}), "lesions": lesions})
    with atomic_path(Path(csv_path)) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for lesion in lesions:
                writer.writerow({k: (" ".join(map(str, np.ravel(lesion[k]))) if isinstance(lesion.get(k), list) else lesion.get(k, ""))
                                 for k in CSV_FIELDS})
