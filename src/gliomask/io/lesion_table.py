"""Lesion tables: the flat per-lesion records of `gliomask predict`, written as ``<case>_lesions.json`` and
``<case>_lesions.csv`` (every CSV column numeric) and read back by evaluation.

Positions in mm are in the frame named in the column (``ras``: NIfTI scanner coordinates RAS+, x towards
patient right, y anterior, z superior, as the file's affine gives them; ``lps``: DICOM/ITK patient
coordinates, x and y negated). Voxel indices are 0-based array indices of the input file; boxes are
inclusive (``_min`` and ``_max`` voxels both belong to the lesion's box).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from gliomask.io.atomic import atomic_path

FRAMES = ("ras", "lps")
FRAME_TEXT = {
    "ras": "RAS+ mm: NIfTI scanner coordinates from the file's affine (x to patient right, y anterior, z superior)",
    "lps": "LPS mm: DICOM/ITK patient coordinates (x to patient left, y posterior, z superior)",
}
VOLUME_FIELDS = ("enhancing_ml", "tumour_core_ml", "necrotic_nonenhancing_core_ml", "oedema_ml")
SCORE_FIELDS = ("max_score", "mean_score", "mean_probability")


def csv_fields(frame: str = "ras") -> list[str]:
    """Column names of ``<case>_lesions.csv`` for ``frame``."""
    xyz = ("x", "y", "z")
    return ["id", "voxels", "volume_ml",
            *(f"centroid_{a}_{frame}_mm" for a in xyz), *(f"centroid_{a}_voxel" for a in "ijk"),
            *(f"bbox_{a}_min_{frame}_mm" for a in xyz), *(f"bbox_{a}_max_{frame}_mm" for a in xyz),
            *(f"bbox_{a}_min_voxel" for a in "ijk"), *(f"bbox_{a}_max_voxel" for a in "ijk"),
            "first_slice", "last_slice", *SCORE_FIELDS, *VOLUME_FIELDS]


def lesion_box(lesion: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The lesion's inclusive voxel box: ((i_min, j_min, k_min), (i_max, j_max, k_max))."""
    return (tuple(int(lesion[f"bbox_{a}_min_voxel"]) for a in "ijk"),
            tuple(int(lesion[f"bbox_{a}_max_voxel"]) for a in "ijk"))


def case_totals(lesions: list[dict]) -> dict:
    """Whole-case figures: lesion count, total volume and the volume of each region in mL."""
    total = {"lesions": len(lesions), "volume_ml": round(sum(les["volume_ml"] for les in lesions), 4)}
    for key in VOLUME_FIELDS:
        total[key] = round(sum(les[key] for les in lesions), 4)
    return total


def lesion_frame(lesions: list[dict]) -> str:
    """The frame (ras or lps) of a lesion list's mm columns (ras for an empty list)."""
    for frame in FRAMES:
        if lesions and f"centroid_x_{frame}_mm" in lesions[0]:
            return frame
    return "ras"


def write_lesion_report(lesions: list[dict], json_path: Path, csv_path: Path, *, case_id: str,
                        extra: dict | None = None) -> None:
    """``<case>_lesions.json`` (metadata, frame, totals, lesions) and ``<case>_lesions.csv`` (numeric)."""
    frame = lesion_frame(lesions)
    meta = {"case": case_id, **(extra or {}), "frame": frame, "frame_description": FRAME_TEXT[frame],
            "voxel_indices": "0-based array indices of the input file; boxes include both bounds",
            "volumes": "enhancing = ET; tumour_core = TC (necrotic/non-enhancing core + enhancing); "
                       "whole lesion = TC + oedema",
            "totals": case_totals(lesions), "lesions": lesions}
    with atomic_path(Path(json_path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    fields = csv_fields(frame)
    with atomic_path(Path(csv_path)) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for lesion in lesions:
                writer.writerow({k: lesion.get(k, "") for k in fields})
