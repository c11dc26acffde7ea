"""What a follow-up compares per lesion: compartment volumes and the RANO bidimensional product.

Lesions are the 26-connected components of the whole tumour (as in the lesion report). The
bidimensional product is measured as RANO does on the enhancing part: on the axial slice where the
lesion's enhancing area is largest, the longest diameter and the longest diameter perpendicular to it,
edge to edge in mm (the enhancing region's outline, its necrotic or cystic centre included); a lesion is
measurable when both are at least 10 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from gliomask.labels import ENHANCING, NECROTIC, OEDEMA, REGION_LABELS, STRUCTURE_3D, label_mask

MEASURABLE_MM = 10.0  # RANO: both diameters at least 10 mm


@dataclass(frozen=True)
class Bidimensional:
    """``longest_mm`` and ``perpendicular_mm`` on axial slice ``slice_index`` (voxel index along the axial
    axis); ``product_mm2`` their product; all zero when the lesion has no enhancing part."""

    longest_mm: float = 0.0
    perpendicular_mm: float = 0.0
    slice_index: int = -1

    @property
    def product_mm2(self) -> float:
        return self.longest_mm * self.perpendicular_mm

    @property
    def measurable(self) -> bool:
        return self.longest_mm >= MEASURABLE_MM and self.perpendicular_mm >= MEASURABLE_MM


def axial_axis(affine: np.ndarray) -> int:
    """The voxel axis closest to the scanner's inferior-superior direction."""
    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=float))).replace("I", "S").index("S")


def lesion_components(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Int32 [X, Y, Z] 26-connected whole-tumour components (0 outside), numbered by decreasing volume."""
    comps, count = ndimage.label(label_mask(labels, REGION_LABELS["WT"]), structure=STRUCTURE_3D)  # a cavity is no lesion
    if count == 0:
        return comps.astype(np.int32), 0
    sizes = np.bincount(comps.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")
    relabel = np.zeros(count + 1, np.int32)
    relabel[order + 1] = np.arange(1, count + 1)
    return relabel[comps], count


def compartment_volumes(labels_in_lesion: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Internal labels of one lesion's voxels -> WT / TC / ET / necrosis / oedema volumes in mL."""
    sub = np.asarray(labels_in_lesion)
    return {"wt_ml": round(int(label_mask(sub, REGION_LABELS["WT"]).sum()) * voxel_ml, 4),
            "tc_ml": round(int(label_mask(sub, REGION_LABELS["TC"]).sum()) * voxel_ml, 4),
            "et_ml": round(int((sub == ENHANCING).sum()) * voxel_ml, 4),
            "necrosis_ml": round(int((sub == NECROTIC).sum()) * voxel_ml, 4),
            "oedema_ml": round(int((sub == OEDEMA).sum()) * voxel_ml, 4)}


def bidimensional(enhancing: np.ndarray, affine: np.ndarray) -> Bidimensional:
    """RANO diameters of a Bool [X, Y, Z] enhancing mask (one lesion's) on the voxel grid of ``affine``."""
    affine = np.asarray(affine, dtype=float)
    axis = axial_axis(affine)
    areas = enhancing.sum(axis=tuple(a for a in range(3) if a != axis))
    if not areas.any():
        return Bidimensional()
    k = int(np.argmax(areas))
    plane = np.take(enhancing, k, axis=axis)
    plane = ndimage.binary_fill_holes(plane)  # the outline: a necrotic centre inside the rim is measured across
    in_plane = [a for a in range(3) if a != axis]
    v1, v2 = affine[:3, in_plane[0]], affine[:3, in_plane[1]]  # one voxel step along each in-plane axis, mm
    e1 = v1 / np.linalg.norm(v1)
    e2 = v2 - (v2 @ e1) * e1
    e2 /= np.linalg.norm(e2)
    ij = np.argwhere(plane).astype(float)
    mm = ij[:, :1] * v1 + ij[:, 1:] * v2
    pts = np.stack([mm @ e1, mm @ e2], axis=1)  # the slice's voxel centres, mm in the slice's own plane
    sizes = np.array([np.linalg.norm(v1), np.linalg.norm(v2)])
    axes2d = np.array([[1.0, 0.0], [v2 @ e1, v2 @ e2]]) / np.array([[1.0], [sizes[1]]])  # voxel axes, in-plane

    def extent(direction: np.ndarray) -> float:
        """A voxel's size along a unit in-plane direction (the ellipse inscribed in the voxel): the last
        voxel centres inside a lesion lie on average half of it inside its edge, so centre-to-centre
        distance + this is the edge-to-edge diameter."""
        along_axes = axes2d @ direction
        return float(1.0 / np.sqrt(((along_axes / sizes) ** 2).sum()))

    hull = _hull_points(pts)
    if len(hull) == 1:
        d = np.array([1.0, 0.0])
        return Bidimensional(extent(d), extent(np.array([0.0, 1.0])), k)
    diff = hull[:, None, :] - hull[None, :, :]
    dist = np.sqrt((diff ** 2).sum(-1))
    a, b = np.unravel_index(np.argmax(dist), dist.shape)
    d = diff[a, b] / dist[a, b]
    n = np.array([-d[1], d[0]])
    longest = float(dist[a, b]) + extent(d)
    # the longest chord perpendicular to it: the widest extent along n among voxels at one position along d
    along = pts @ d
    across = pts @ n
    width = max(min(np.linalg.norm(v1), np.linalg.norm(v2)), 1e-6)
    bins = np.rint((along - along.min()) / width).astype(np.int64)  # relative: the same wherever the lesion lies
    order = np.argsort(bins, kind="stable")
    bins, across = bins[order], across[order]
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    spans = np.maximum.reduceat(across, starts) - np.minimum.reduceat(across, starts)
    return Bidimensional(round(longest, 2), round(float(spans.max()) + extent(n), 2), k)


def _hull_points(pts: np.ndarray) -> np.ndarray:
    """The convex hull's vertices (all points when they are collinear or too few)."""
    unique = np.unique(pts, axis=0)
    if len(unique) < 3:
        return unique
    try:
        return unique[ConvexHull(unique).vertices]
    except QhullError:  # collinear points
        return unique


def measure_lesions(labels: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Internal label map UInt8 [X, Y, Z] + its affine -> (component map, one dict per lesion: id, voxels,
    centroid in voxels and in scanner mm (RAS), compartment volumes, bidimensional measurement)."""
    affine = np.asarray(affine, dtype=float)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    comps, count = lesion_components(labels)
    objects = ndimage.find_objects(comps)
    lesions = []
    for index in range(1, count + 1):
        box = objects[index - 1]
        inside = comps[box] == index
        offset = np.array([s.start for s in box])
        centroid = np.array(ndimage.center_of_mass(inside)) + offset
        sub = labels[box]
        et = inside & (sub == ENHANCING)
        bi = bidimensional(et, _shifted(affine, offset))
        lesions.append({"component": index, "voxels": int(inside.sum()),
                        "centroid_voxel": [round(float(c), 2) for c in centroid],
                        "centroid_ras_mm": [round(float(c), 2) for c in affine[:3, :3] @ centroid + affine[:3, 3]],
                        **compartment_volumes(sub[inside], voxel_ml),
                        "longest_diameter_mm": bi.longest_mm, "perpendicular_diameter_mm": bi.perpendicular_mm,
                        "product_mm2": round(bi.product_mm2, 1), "measurable": bi.measurable,
                        "axial_slice": int(bi.slice_index + offset[axial_axis(affine)]) if bi.slice_index >= 0 else None})
    return comps, lesions


def _shifted(affine: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The affine of a sub-array starting at voxel ``offset``."""
    out = affine.copy()
    out[:3, 3] = affine[:3, :3] @ offset + affine[:3, 3]
    return out
