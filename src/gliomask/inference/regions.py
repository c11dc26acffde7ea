"""Post-processing of region maps: lesions kept by their detections, small components removed, the
hierarchy ET ⊆ TC ⊆ WT enforced."""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from gliomask.utils import bounding_box


def enforce_hierarchy(regions: np.ndarray, min_voxels: int = 0) -> np.ndarray:
    """Clean and nest Bool [3, ...] WT, TC, ET maps.

    3-D components of WT smaller than ``min_voxels`` are removed, then TC ⊆ WT and ET ⊆ TC by
    intersection. ET components smaller than ``min_voxels`` are relabelled as core (they stay in TC):
    one false-positive ET voxel in a case without ET turns its Dice from 1 into 0.
    """
    wt, tc, et = (np.asarray(r, dtype=bool) for r in regions)
    wt = remove_small(wt, min_voxels)
    tc = remove_small(tc & wt, min_voxels)
    et = remove_small(et & tc, min_voxels)
    return np.stack([wt, tc, et])


def postprocess(regions: np.ndarray, scores: np.ndarray, *, min_voxels: int, min_lesion_score: float,
                min_case_et_voxels: int = 0, fill_holes: bool = False) -> np.ndarray:
    """Bool [3, ...] composed regions -> cleaned, nested regions.

    A 3-D whole-tumour lesion is kept only when some detection covering it scored at least
    ``min_lesion_score`` (``scores`` Float [...]: the highest kept detection score per voxel): pixel
    thresholds can stay low enough to catch a lesion's faint edge slices, while lesions made only of
    faint detections, the typical false positives, are dropped. Then ``enforce_hierarchy``. Finally,
    when the whole case holds fewer than ``min_case_et_voxels`` ET voxels, they are relabelled as core
    (BraTS scores any ET in a case without ET as Dice 0). With ``fill_holes``, enclosed centres become
    tumour core (`fill_enclosed`).
    """
    wt = regions[0]
    if min_lesion_score > 0 and wt.any():
        # 26-connected (`labels.STRUCTURE_3D`, as BraTS scoring); cc3d labels a volume several times faster than scipy
        components, count = cc3d.connected_components(wt, connectivity=26, return_N=True)
        best = np.zeros(count + 1)  # each component's highest detection score (scores are >= 0)
        np.maximum.at(best, components[wt], np.asarray(scores, dtype=np.float64)[wt])
        keep = best >= min_lesion_score
        keep[0] = False
        regions = np.stack([keep[components], regions[1], regions[2]])
    regions = enforce_hierarchy(regions, min_voxels)
    if fill_holes:
        regions = fill_enclosed(regions)
    if min_case_et_voxels and int(regions[2].sum()) < min_case_et_voxels:
        regions[2] = False
    return regions


def remove_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    if min_voxels <= 1 or not mask.any():
        return mask
    components, count = cc3d.connected_components(mask, connectivity=26, return_N=True)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[components]


def fill_enclosed(regions: np.ndarray) -> np.ndarray:
    """Nested Bool [3, ...] WT, TC, ET -> the same with enclosed centres filled.

    A necrotic or cystic centre inside an enhancing rim is tumour core, whatever the network made of
    its dark voxels: every hole of TC enclosed in 3-D, or within a slice of any of the three planes (a
    rim open at its top or bottom still encloses its centre slice by slice), joins TC (as non-enhancing
    core: ET is unchanged), and WT's enclosed holes join WT. Nothing outside an enclosing shell changes.
    """
    wt, tc, et = (np.array(r, dtype=bool) for r in regions)
    tc |= _enclosed(tc)
    wt |= tc
    wt |= _enclosed(wt)
    return np.stack([wt, tc, et])


def _enclosed(mask: np.ndarray) -> np.ndarray:
    """Bool [...]: voxels outside ``mask`` that it encloses in 3-D or within a slice of any axis."""
    box = bounding_box(mask, pad=1)
    if box is None:
        return np.zeros_like(mask)
    # Only voxels inside the mask's box can be enclosed; one background voxel of margin keeps the box's
    # outside connected to its border, so the holes are the same as on the whole array, and found much faster.
    crop = mask[box]
    holes = _holes(crop, ndimage.generate_binary_structure(crop.ndim, 1), range(crop.ndim))
    for axis in range(crop.ndim):
        # no links across ``axis``: each background component lies in one slice, and it is a hole of that
        # slice unless it reaches the slice's own border (the faces of the other axes)
        plane = np.expand_dims(ndimage.generate_binary_structure(crop.ndim - 1, 1), axis)
        plane = np.concatenate([np.zeros_like(plane), plane, np.zeros_like(plane)], axis)
        holes |= _holes(crop, plane, [a for a in range(crop.ndim) if a != axis])
    enclosed = np.zeros_like(mask)
    enclosed[box] = holes
    return enclosed


def _holes(mask: np.ndarray, structure: np.ndarray, border_axes) -> np.ndarray:
    """Background components of ``mask`` (connected by ``structure``) that touch no face of ``border_axes``:
    what `scipy.ndimage.binary_fill_holes` fills, in one labelling pass instead of repeated dilations."""
    labels, _ = ndimage.label(~mask, structure=structure)
    faces = [np.take(labels, end, axis=a) for a in border_axes for end in (0, -1)]
    outside = np.unique(np.concatenate([f.ravel() for f in faces]))
    return (labels > 0) & ~np.isin(labels, outside)
