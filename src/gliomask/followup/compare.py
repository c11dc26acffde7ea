"""`gliomask compare`: two or more timepoints of one patient, lesion by lesion.

A timepoint is a case folder (predicted with a checkpoint), a label map (a prediction or a ground truth;
BraTS labels of either edition), or a `gliomask predict` output folder holding one ``*_seg.nii.gz``.
Timepoints on the first one's grid (same shape and affine, as BraTS ships them) are compared directly;
the others are registered rigidly onto it (:mod:`gliomask.followup.register`) when both have a scan to
register (a case folder, or a label map beside its case's files), else placed by their headers' scanner
coordinates, and the report says which.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from gliomask.errors import GliomaskError
from gliomask.followup.match import DEFAULT_TOLERANCE_MM, assign_tracks, match_components
from gliomask.followup.measure import measure_lesions
from gliomask.followup.response import IMAGING_ONLY, categorise, target_sum, target_tracks
from gliomask.io.brats import Case, convert_labels, discover_cases, patient_of
from gliomask.io.nifti import AFFINE_ATOL, read_nifti
from gliomask.labels import ENHANCING_2023, RESECTION_CAVITY, label_edition

VOLUME_KEYS = ("wt_ml", "tc_ml", "et_ml", "necrosis_ml", "oedema_ml")
REGISTRATION_IMAGES = ("flair", "t1ce")  # the scan a registration reads, first found


@dataclass
class Timepoint:
    """One scan: internal labels UInt8 [X, Y, Z] on the grid of the NIfTI file ``grid``; ``scan`` a FLAIR or
    T1ce on that grid to register with (None: none); ``modalities``: those the case folder has."""

    name: str
    labels: np.ndarray
    grid: Path
    scan: Path | None
    modalities: tuple[str, ...] | None = None
    source: str = ""


def followup_patient(case_id: str) -> str:
    """The patient of a timepoint's id: BraTS 2023+ ``...-00123-001`` -> ``...-00123``; otherwise a trailing
    ``_<n>`` is taken for the timepoint (``BraTS19_SYN_0001_2`` -> ``BraTS19_SYN_0001``)."""
    patient = patient_of(case_id)
    return patient if patient != case_id else re.sub(r"_\d+$", "", case_id)


def _scan_of(case: Case) -> Path | None:
    return next((Path(case.images[m]) for m in REGISTRATION_IMAGES if m in case.images), None)


def _require_two(count: int) -> None:
    if count < 2:
        raise GliomaskError("compare needs at least two timepoints of one patient")


def _require_one_modality_set(sets: dict[str, tuple[str, ...]]) -> None:
    """``sets``: timepoint name -> the modalities its case folder has (label maps left out)."""
    if len(set(sets.values())) > 1:
        raise GliomaskError("the timepoints' case folders have different modality sets ("
                            + "; ".join(f"{name}: {', '.join(mods)}" for name, mods in sets.items())
                            + "): give every timepoint the same modalities")


def check_inputs(paths: list[Path]) -> None:
    """Before any prediction (the CLI): at least two timepoints, each there, and case folders with one
    modality set; `compare` checks the same on loaded timepoints (API users)."""
    _require_two(len(paths))
    sets = {}
    for path in paths:
        if not Path(path).exists():
            raise GliomaskError("timepoint not found", path)
        if Path(path).is_dir():
            cases = [c for c in discover_cases(path) if c.images]
            if len(cases) == 1:
                sets[Path(path).name] = tuple(sorted(cases[0].images))
    _require_one_modality_set(sets)


def load_timepoint(path: str | Path, predictor=None) -> Timepoint:
    """Read one timepoint argument (see the module's docstring); ``predictor`` predicts case folders."""
    path = Path(path)
    if not path.exists():
        raise GliomaskError("timepoint not found", path)
    if path.is_file():
        _, stored = read_nifti(path)  # read once: the edition is told from the values, then they are converted
        labels = convert_labels(stored, _edition_of_labels(stored), path)
        sibling = _case_of_label_file(path)
        return Timepoint(path.name.split(".nii")[0].removesuffix("_seg").removesuffix("-seg"), labels, path,
                         _scan_of(sibling) if sibling and _same_grid(path, _scan_of(sibling)) else None,
                         None, f"label map {path}")
    cases = discover_cases(path)
    with_images = [c for c in cases if c.images]
    if len(with_images) == 1:
        case = with_images[0]
        if predictor is None:
            raise GliomaskError(f"case folder {case.case_id}: predicting it needs a checkpoint (-m CHECKPOINT), "
                                "or give its label map", path)
        loaded = predictor.check_content(case)
        labels = predictor.predict_case(loaded).labels
        return Timepoint(case.case_id, labels, _scan_of(case) or Path(next(iter(case.images.values()))),
                         _scan_of(case), loaded.present, f"case folder {path}, predicted")
    segs = sorted(path.glob("*_seg.nii.gz")) or sorted(path.glob("*-seg.nii.gz"))
    if len(segs) == 1 and not with_images:
        return load_timepoint(segs[0])
    raise GliomaskError("expected one case folder, one label map, or a predict output folder with one *_seg.nii.gz "
                        f"(found {len(with_images)} cases with images, {len(segs)} label maps)", path)


def _edition_of_labels(stored: np.ndarray) -> str:
    """A lone label map's edition from its values: a 3 means 2023-style labels (2024 when a 4, the
    resection cavity, is there too); otherwise brats2019. A 2024 map with a cavity and no enhancing
    tumour reads as 2019 (its 4 as enhancing): give such timepoints as case folders, whose names tell."""
    values = set(np.unique(stored).astype(int).tolist())
    return label_edition(values, "brats2023") if ENHANCING_2023 in values else "brats2019"


def _case_of_label_file(path: Path) -> Case | None:
    try:
        cases = [c for c in discover_cases(path.parent) if c.images and c.seg and Path(c.seg).resolve() == path.resolve()]
    except GliomaskError:
        return None
    return cases[0] if cases else None


def _same_grid(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    ia, ib = nib.load(str(a)), nib.load(str(b))
    return ia.shape[:3] == ib.shape[:3] and np.allclose(ia.affine, ib.affine, atol=AFFINE_ATOL)


def compare(timepoints: list[Timepoint], *, tolerance_mm: float = DEFAULT_TOLERANCE_MM,
            threads: int | None = None) -> tuple[dict, list[np.ndarray], list[np.ndarray | None], list[np.ndarray]]:
    """Align every timepoint onto the first, follow its lesions, measure them and categorise each follow-up.

    Returns (the report, ``compare.json``; per timepoint UInt8 labels on the first grid; per timepoint its
    Float32 scan on the first grid, or None; per timepoint its lesion components, Int labels numbered as
    the report's ``component``), the last three for the pictures."""
    _require_two(len(timepoints))
    _require_one_modality_set({tp.name: tuple(sorted(tp.modalities)) for tp in timepoints if tp.modalities})
    patients = sorted({followup_patient(tp.name) for tp in timepoints})
    if len(patients) > 1:
        print(f"gliomask: warning: the timepoints are named after different patients ({', '.join(patients)}); "
              "comparing them as one patient", file=sys.stderr)
    first = timepoints[0]
    reference = nib.load(str(first.grid))
    affine = reference.affine
    aligned, alignment = [first.labels], [{"timepoint": first.name, "how": "reference grid"}]
    scans = [np.asarray(nib.load(str(first.scan)).dataobj, dtype=np.float32) if first.scan else None]
    for tp in timepoints[1:]:
        labels, scan = _onto_first(tp, first, alignment, threads)
        aligned.append(labels)
        scans.append(scan)
    measured = [measure_lesions(labels, affine) for labels in aligned]
    centroids = [{les["component"]: np.array(les["centroid_ras_mm"]) for les in lesions} for _, lesions in measured]
    edges = [match_components(measured[t - 1][0], measured[t][0], centroids[t - 1], centroids[t], tolerance_mm)
             for t in range(1, len(measured))]
    names, events = assign_tracks([[les["component"] for les in lesions] for _, lesions in measured], edges)
    per_track = [_tracks_at(lesions, names[t]) for t, (_, lesions) in enumerate(measured)]
    targets = target_tracks(per_track[0])
    sums = [target_sum(p, targets) for p in per_track]
    et = [sum(les["et_ml"] for les in lesions) for _, lesions in measured]
    followups = []
    for t in range(1, len(timepoints)):
        new_measurable = [n for n in events[t - 1]["new"] if per_track[t][n]["measurable"]]
        followups.append({"timepoint": t, "name": timepoints[t].name, **events[t - 1],
                          "bidimensional": categorise("bidimensional", sums, new_measurable, t),
                          "volumetric": categorise("volumetric", et, new_measurable, t)})
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    return {"timepoints": [{"index": t, "name": tp.name, "source": tp.source,
                            # BraTS 2024's resection cavity: not a lesion, reported beside them
                            "cavity_ml": round(int((aligned[t] == RESECTION_CAVITY).sum()) * voxel_ml, 4),
                            "lesions": [{**les, "track": names[t][les["component"]]} for les in measured[t][1]]}
                           for t, tp in enumerate(timepoints)],
            "alignment": alignment, "reference_grid": str(first.grid), "match_tolerance_mm": tolerance_mm,
            "tracks": _track_table(per_track), "targets": targets,
            "target_sum_mm2": [round(s, 1) for s in sums], "enhancing_ml": [round(v, 4) for v in et],
            "followups": followups, "response_is": IMAGING_ONLY}, aligned, scans, [components for components, _ in measured]


def _onto_first(tp: Timepoint, first: Timepoint, alignment: list, threads) -> tuple[np.ndarray, np.ndarray | None]:
    """A later timepoint's labels (and scan, when it has one) on the first timepoint's grid."""
    if _same_grid(first.grid, tp.grid):
        alignment.append({"timepoint": tp.name, "how": "same grid as the first timepoint"})
        return tp.labels, np.asarray(nib.load(str(tp.scan)).dataobj, dtype=np.float32) if tp.scan else None
    from gliomask.followup.register import image_onto, labels_onto, register_rigid

    if tp.scan is not None and first.scan is not None:
        transform, report = register_rigid(first.scan, tp.scan, threads=threads)
        alignment.append({"timepoint": tp.name, "how": "registered", **report})
        return labels_onto(tp.labels, tp.grid, first.grid, transform), image_onto(tp.scan, first.grid, transform)
    alignment.append({"timepoint": tp.name, "how": "placed by the headers' scanner coordinates (no scan to register)"})
    return labels_onto(tp.labels, tp.grid, first.grid), None


def _tracks_at(lesions: list[dict], names: dict[int, str]) -> dict[str, dict]:
    """Per track at one timepoint: volumes and products summed over its pieces; measurable if one piece is."""
    out: dict[str, dict] = {}
    for les in lesions:
        entry = out.setdefault(names[les["component"]], {**{k: 0.0 for k in VOLUME_KEYS}, "product_mm2": 0.0,
                                                          "measurable": False, "pieces": 0})
        for key in (*VOLUME_KEYS, "product_mm2"):
            entry[key] = round(entry[key] + les[key], 4)
        entry["measurable"] |= les["measurable"]
        entry["pieces"] += 1
    return out


def _track_table(per_track: list[dict[str, dict]]) -> dict[str, list[dict]]:
    """{track: one row per timepoint}: volumes (0 where absent), change from the track's baseline (its
    first timepoint) and from its nadir (smallest earlier whole-tumour volume), in mL and percent."""
    tracks = sorted({n for p in per_track for n in p}, key=lambda n: (int(n.split("+")[0][1:]), n))
    table = {}
    for name in tracks:
        rows, history = [], []
        for t, p in enumerate(per_track):
            entry = p.get(name)
            row = {"timepoint": t, "present": entry is not None,
                   **{k: (entry[k] if entry else 0.0) for k in (*VOLUME_KEYS, "product_mm2")},
                   "measurable": bool(entry and entry["measurable"])}
            if history:
                base, nadir = history[0], min(history)
                row["wt_change_from_baseline_ml"] = round(row["wt_ml"] - base, 4)
                row["wt_change_from_baseline_pct"] = None if base == 0 else round(100 * (row["wt_ml"] - base) / base, 1)
                row["wt_change_from_nadir_ml"] = round(row["wt_ml"] - nadir, 4)
                row["wt_change_from_nadir_pct"] = None if nadir == 0 else round(100 * (row["wt_ml"] - nadir) / nadir, 1)
            if entry is not None or history:
                history.append(row["wt_ml"])
            rows.append(row)
        table[name] = rows
    return table
