"""BraTS label semantics, the one place that spells label values.

Editions: BraTS 2017-2021 (``brats2019``) label 1 necrotic / non-enhancing core, 2 oedema, 4 enhancing;
BraTS 2023+ (``brats2023``) writes enhancing as 3; BraTS 2024 post-treatment (``brats2024``) keeps 1 NETC,
2 SNFH, 3 ET and adds 4, the resection cavity (RC). Internally gliomask always uses the 2019 values, and
5 for the resection cavity (a value no edition writes, so an internal map is never mistaken for a file's);
`to_internal` and `to_convention` convert on the way in and out. The cavity is not tumour: it belongs to
no tumour region (WT, TC, ET) and is scored on its own (BraTS 2024).

Regions (what BraTS scores): WT whole tumour {1, 2, 4}, TC tumour core {1, 4}, ET enhancing {4},
nested ET ⊆ TC ⊆ WT. Class schemes: what a detector's classes cover. Connectivity: 26-connected
lesions in 3-D (BraTS lesion-wise scoring), 8-connected in 2-D.
"""

from __future__ import annotations

import numpy as np

# Internal label values (the BraTS 2017-2021 ones).
NECROTIC, OEDEMA, ENHANCING = 1, 2, 4

RESECTION_CAVITY = 5  # internal only; BraTS 2024 writes it as 4

# Edition -> the labels a valid segmentation of that edition may hold.
EDITION_LABELS = {"brats2019": (0, NECROTIC, OEDEMA, ENHANCING), "brats2023": (0, NECROTIC, OEDEMA, 3),
                  "brats2024": (0, NECROTIC, OEDEMA, 3, 4)}
ENHANCING_2023 = 3
CAVITY_2024 = 4
CONVENTIONS = tuple(EDITION_LABELS)

REGIONS = (("WT", (NECROTIC, OEDEMA, ENHANCING)), ("TC", (NECROTIC, ENHANCING)), ("ET", (ENHANCING,)))
REGION_NAMES = tuple(name for name, _ in REGIONS)
REGION_LABELS = dict(REGIONS)
CAVITY_REGION = ("RC", (RESECTION_CAVITY,))

# What each evaluation standard scores: BraTS 2024 (post-treatment) adds the single labels and the cavity,
# in the official code's order.
SCORED_REGIONS = {
    "brats2023": REGIONS,
    "legacy": REGIONS,
    "brats2024": (REGIONS[0], REGIONS[1], ("NETC", (NECROTIC,)), ("SNFH", (OEDEMA,)), REGIONS[2], CAVITY_REGION),
}

# Class schemes: (class name, internal labels it covers). Class ids are 1-based positions.
CLASS_SCHEMES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "regions": REGIONS,  # nested, overlapping
    "labels": (("NCR", (NECROTIC,)), ("ED", (OEDEMA,)), ("ET", (ENHANCING,))),  # disjoint
    "whole": (REGIONS[0],),
}

STRUCTURE_3D = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity, as BraTS lesion-wise scoring
STRUCTURE_2D = np.ones((3, 3), dtype=bool)  # 8-connectivity, its 2-D counterpart


def label_mask(seg: np.ndarray, values) -> np.ndarray:
    """Bool array: where ``seg`` holds any of ``values``. One comparison per value: several times faster
    than np.isin or a look-up table (which casts 9 million uint8 indices to int64) on a full volume."""
    seg = np.asarray(seg)
    out = np.zeros_like(seg, dtype=bool)  # in seg's memory order: NIfTI arrays are Fortran-ordered
    for v in values:
        out |= seg == v
    return out


def regions_from_labels(seg: np.ndarray, regions=REGIONS) -> np.ndarray:
    """Integer label map (internal 0/1/2/4, 5 cavity) -> Bool [R, ...], one per region (default WT, TC, ET)."""
    return np.stack([label_mask(seg, values) for _, values in regions])


def labels_from_regions(regions: np.ndarray) -> np.ndarray:
    """Bool [3, ...] nested regions -> UInt8 label map: oedema, then core, then enhancing painted over."""
    wt, tc, et = regions
    seg = np.zeros(wt.shape, dtype=np.uint8)
    seg[wt] = OEDEMA
    seg[tc] = NECROTIC
    seg[et] = ENHANCING
    return seg


def to_convention(seg: np.ndarray, convention: str) -> np.ndarray:
    """Internal labels -> ``brats2019`` (0/1/2/4), ``brats2023`` (0/1/2/3) or ``brats2024`` (0/1/2/3, cavity 4).
    Editions without a cavity label write a cavity as background (it is not tumour)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown label convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    cavity = seg == RESECTION_CAVITY
    if convention == "brats2019" and not cavity.any():
        return seg
    out = seg.copy()
    out[cavity] = CAVITY_2024 if convention == "brats2024" else 0
    if convention != "brats2019":
        out[seg == ENHANCING] = ENHANCING_2023
    return out


def to_internal(seg: np.ndarray, convention: str) -> np.ndarray:
    """An edition's integer labels (already checked with `unknown_labels`) -> internal UInt8 labels."""
    src = np.asarray(seg)
    out = src.astype(np.uint8)
    if convention in ("brats2023", "brats2024"):
        out[src == ENHANCING_2023] = ENHANCING
        if convention == "brats2024":
            out[src == CAVITY_2024] = RESECTION_CAVITY
    elif convention != "brats2019":
        raise ValueError(f"unknown label convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    return out


def label_edition(values, naming: str) -> str:
    """The edition of a label map with these values, its files named the ``naming`` way (``brats2019`` or
    ``brats2023``): 2023-style names with a label 4 are BraTS 2024 post-treatment (4 is its resection
    cavity; 2023 has no 4); without one they read the same under 2023 and 2024 and are called 2023."""
    return edition_of(naming, has_cavity=CAVITY_2024 in {int(v) for v in values})


def edition_of(naming: str, has_cavity: bool) -> str:
    """`label_edition` for a caller that already knows whether its 2023-style-named map held a resection
    cavity (BraTS 2024's label 4); with 2019-style names there is no cavity to ask about."""
    if naming == "brats2019":
        return "brats2019"
    return "brats2024" if has_cavity else naming


def unknown_labels(seg: np.ndarray, convention: str) -> list[int]:
    """The values of ``seg`` that ``convention`` does not allow (empty when the map is valid)."""
    bad = ~label_mask(seg, EDITION_LABELS[convention])
    return [int(v) for v in np.unique(np.asarray(seg)[bad])] if bad.any() else []


def class_names(scheme: str) -> list[str]:
    return [name for name, _ in CLASS_SCHEMES[scheme]]


def class_to_regions(scheme: str) -> list[list[int]]:
    """For each class of ``scheme``: the region indices it belongs to (its labels ⊆ the region's)."""
    return [[r for r, (_, values) in enumerate(REGIONS) if set(labels) <= set(values)]
            for _, labels in CLASS_SCHEMES[scheme]]


def class_score_region(scheme: str) -> list[int]:
    """The smallest region holding each class: where that class's threshold is judged."""
    return [max(regions) for regions in class_to_regions(scheme)]
