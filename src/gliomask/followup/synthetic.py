"""Synthetic follow-up: one patient scanned N times, anatomy kept, tumours evolving, with the true story.

Every timepoint is the same synthetic brain (same template deformation, same seed) with three planned
enhancing tumours whose presence and size change over time (volumes scale with the cube of the radii):

- lesion 1 grows: 60 % more volume at the second timepoint, then stays;
- lesion 2 shrinks to 35 % of its volume at the second timepoint and is gone from the third on;
- lesion 3 appears at the third timepoint (the second when there are only two) and grows 30 % per scan.

With ``surgery`` (the default for edition 2024, whose labels have a resection cavity), lesion 2 is
operated on after the first scan: from the second timepoint on, a resection cavity (label 4 in 2024
files) lies where its core was, with its residual tumour around it at the second timepoint.

Tumours push tissue aside, so anatomy next to a growing tumour moves a little, as in real follow-up.
Case ids follow the edition's naming of timepoints: ``BraTS19_SYN_0001_1``, ``_2``, ... or
``BraTS-GLI-00001-000``, ``-001``, ... Beside the cases, ``followup_truth.json`` gives, per patient and
timepoint, the lesions present (true identities), their measured volumes and RANO diameters, and what
the generator implies: new and resolved lesions and the imaging response categories; in
``followup_truth/``, each timepoint's ``<case>_lesion-identity.nii.gz`` holds the true identity of every
tumour voxel.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from gliomask.data.synth import SHAPE, _save_brats_nifti, BRATS_AFFINE, write_case
from gliomask.errors import GliomaskError
from gliomask.io.atomic import atomic_output_dir
from gliomask.labels import RESECTION_CAVITY

GROWTH = 1.6
SHRINK = 0.35
NEW_GROWTH = 1.3
CAVITY = 0.55  # cavity radius in units of lesion 2's first core radius (its residual at the second scan is ~0.7)


def volume_factors(timepoints: int) -> list[dict[int, float]]:
    """{identity: volume factor against its first appearance} per timepoint (absent: not a key)."""
    appears = 2 if timepoints >= 3 else 1
    out = []
    for t in range(timepoints):
        present = {1: GROWTH if t >= 1 else 1.0}
        if t == 0:
            present[2] = 1.0
        elif t < 2:
            present[2] = SHRINK
        if t >= appears:
            present[3] = NEW_GROWTH ** (t - appears)
        out.append(present)
    return out


def followup_case_id(index: int, t: int, edition: str) -> str:
    return f"BraTS19_SYN_{index:04d}_{t + 1}" if edition == "2019" else f"BraTS-GLI-{index:05d}-{t:03d}"


def synth_timepoint(index: int, seed: int, factors: dict[int, float], resected: bool = False):
    """({modality: int16 volume}, seg, identity map) of one timepoint (see the module's story);
    ``resected``: lesion 2 has been operated on (a cavity where its core was)."""
    from gliomask.data.synth_anatomy import synth_anatomy_case
    from gliomask.data.synth_tumour import plan_tumours

    def tumours(rng, template, points, q):
        plans = plan_tumours(rng, template, points, q, count=3, enhancing=True)
        if len(plans) < 3:
            raise GliomaskError(f"synthetic follow-up {index}: no room for three tumours; try another seed")
        chosen = [(i, replace(plans[i - 1], radius_core=plans[i - 1].radius_core * f ** (1 / 3),
                              radius_oedema=plans[i - 1].radius_oedema * f ** (1 / 3)))
                  for i, f in sorted(factors.items())]
        cavities = [(plans[1], CAVITY)] if resected else []
        return [p for _, p in chosen], [i for i, _ in chosen], cavities

    owner = np.zeros(SHAPE, np.uint8, order="F")
    images, seg = synth_anatomy_case(index, seed, tumours=tumours, owner=owner)
    owner[seg == 0] = 0
    return images, seg, owner


def truth_story(labels_per_t: list[np.ndarray], owners: list[np.ndarray], affine: np.ndarray) -> dict:
    """The generator's account of a patient: per timepoint and identity, volumes and RANO diameters
    measured on the true labels; new and resolved identities; the response categories they imply."""
    from gliomask.followup.measure import bidimensional, compartment_volumes
    from gliomask.followup.response import IMAGING_ONLY, categorise, target_sum, target_tracks

    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    per_t, cavities = [], []
    for labels, owner in zip(labels_per_t, owners):
        lesions = {}
        for ident in (int(i) for i in np.unique(owner) if i):
            mask = owner == ident
            bi = bidimensional(mask & (labels == 4), affine)
            lesions[f"L{ident}"] = {**compartment_volumes(labels[mask], voxel_ml),
                                    "product_mm2": round(bi.product_mm2, 1), "measurable": bi.measurable,
                                    "longest_diameter_mm": bi.longest_mm, "perpendicular_diameter_mm": bi.perpendicular_mm}
        per_t.append(lesions)
        cavities.append(round(int((labels == RESECTION_CAVITY).sum()) * voxel_ml, 4))
    targets = target_tracks(per_t[0])
    sums = [target_sum(p, targets) for p in per_t]
    et = [sum(v["et_ml"] for v in p.values()) for p in per_t]
    followups = []
    for t in range(1, len(per_t)):
        new = sorted(set(per_t[t]) - set(per_t[t - 1]))
        new_measurable = [n for n in new if per_t[t][n]["measurable"]]
        followups.append({"timepoint": t, "new": new, "resolved": sorted(set(per_t[t - 1]) - set(per_t[t])),
                          "bidimensional": categorise("bidimensional", sums, new_measurable, t),
                          "volumetric": categorise("volumetric", et, new_measurable, t)})
    return {"lesions": per_t, "cavity_ml": cavities, "targets": targets, "followups": followups, "response_is": IMAGING_ONLY}


def synthesize_followup(out: str | Path, *, patients: int = 1, timepoints: int = 3, seed: int = 0,
                        edition: str = "2019", start: int = 1, surgery: bool | None = None) -> list[list[str]]:
    """Write ``patients`` synthetic patients of ``timepoints`` scans each under ``out`` (atomic, new folder),
    one case folder per scan, and ``followup_truth.json``. Returns the case ids per patient. ``surgery``
    (default: edition 2024, the one edition that labels cavities): lesion 2 is resected after the first scan."""
    surgery = edition == "2024" if surgery is None else surgery
    if surgery and edition != "2024":
        raise GliomaskError("a resection cavity is labelled in BraTS 2024 files only: use edition 2024 for surgery")
    out = Path(out)
    if timepoints < 2:
        raise GliomaskError(f"--timepoints must be at least 2 for a follow-up, got {timepoints}")
    if out.exists() and any(out.iterdir()):
        raise GliomaskError("output folder exists and is not empty", out)
    if out.exists():
        out.rmdir()
    truth, ids = {}, []
    with atomic_output_dir(out) as tmp:
        for index in range(start, start + patients):
            labels, owners, case_ids = [], [], []
            for t, factors in enumerate(volume_factors(timepoints)):
                images, seg, owner = synth_timepoint(index, seed, factors, resected=surgery and t >= 1)
                cid = followup_case_id(index, t, edition)
                write_case(tmp / cid, cid, edition, images, seg)
                (tmp / "followup_truth").mkdir(exist_ok=True)
                _save_brats_nifti(owner, tmp / "followup_truth" / f"{cid}_lesion-identity.nii.gz")
                labels.append(seg)
                owners.append(owner)
                case_ids.append(cid)
            story = truth_story(labels, owners, BRATS_AFFINE)
            truth[f"patient_{index:04d}"] = {"cases": case_ids, **story}
            ids.append(case_ids)
        (tmp / "followup_truth.json").write_text(json.dumps(truth, indent=1))
    return ids
