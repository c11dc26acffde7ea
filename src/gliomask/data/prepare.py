"""`gliomask prepare`: a BraTS folder becomes a training set of normalised 2-D multi-channel slices.

Layout of a prepared folder::

    prepared.json          settings, classes, per-case geometry (crop, affine), kept slices, folds
    cases/<case>.img.npy   float16 [S, C, H, W]: brain-cropped, normalised, slicing axis first
    cases/<case>.seg.npy   uint8   [S, H, W]: internal labels 0/1/2/4 (5: BraTS 2024 resection cavity) on
                           the same grid

Instances are derived from the label slices on the fly (`slice_instances`), so the masks a model
trains on are always exactly the stored labels.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gliomask import __version__
from gliomask.labels import CLASS_SCHEMES, RESECTION_CAVITY, class_names, edition_of
from gliomask.data.normalize import DEFAULT_CLIP
from gliomask.data.planes import AXES
from gliomask.data.preprocess import preprocess
from gliomask.data.geometry import training_geometry
from gliomask.data.plausibility import (case_problems, enhancement_share, modality_correlations, report,
                                        swap_problems, swapped_modalities, typical_correlations)
from gliomask.errors import GliomaskError
from gliomask.io.brats import Case, discover_cases, load_case, parse_modalities, patient_of
from gliomask.io.atomic import atomic_output_dir, save_array
from gliomask.data.folds import make_folds
from gliomask.data.prepared import FORMAT_VERSION, META_NAME
from gliomask.utils import progress_bar, write_json



@dataclass
class PrepareSettings:
    modalities: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
    axis: str = "axial"
    scheme: str = "regions"
    min_area: int = 8  # pixels; smaller 2-D components are not made instances
    negative_fraction: float = 0.25  # share of tumour-free brain slices kept as negatives
    folds: int = 5
    seed: int = 0
    clip_percentiles: tuple[float, float] = DEFAULT_CLIP
    crop_margin: int = 2
    allow_missing: bool = False  # a case may lack some modalities: zero channels, listed per case as "available"

    def validate(self) -> None:
        if self.axis not in AXES:
            raise GliomaskError(f"unknown axis {self.axis!r}; choose from {', '.join(AXES)}")
        if self.scheme not in CLASS_SCHEMES:
            raise GliomaskError(f"unknown class scheme {self.scheme!r}; choose from {', '.join(CLASS_SCHEMES)}")
        if not 0.0 <= self.negative_fraction <= 1.0:
            raise GliomaskError("--negatives must lie between 0 and 1")
        if self.folds < 1:
            raise GliomaskError("--folds must be at least 1")
        if self.min_area < 1:
            raise GliomaskError("--min-area must be at least 1")


def prepare_case(case: Case, settings: PrepareSettings, out_dir: Path | None, force: bool = False) -> dict:
    """Load, validate, crop and normalise one case; write its arrays; return its metadata. Implausible
    images (:mod:`gliomask.data.plausibility`) are refused, or only warned about with ``force``."""
    loaded = load_case(case, settings.modalities, allow_missing=settings.allow_missing)
    present = loaded.present
    report(case_problems(case, loaded), force)
    # the typical matrix (and the swap check beside the other cases) needs every modality
    correlations = modality_correlations(loaded.images) if len(present) == len(settings.modalities) else None
    if loaded.seg is None:
        raise GliomaskError(f"case {case.case_id} has no segmentation (<case>_seg.nii.gz) to train on", case.folder)
    pre = preprocess(loaded.images, axis=AXES[settings.axis], clip_percentiles=settings.clip_percentiles,
                     crop_margin=settings.crop_margin, source=case.images[present[0]])
    crop = pre.crop
    images = pre.volume.astype(np.float16)  # [S, C, H, W]
    seg = pre.to_slices(loaded.seg)  # [S, H, W]
    cavity = seg == RESECTION_CAVITY
    labelled = seg.reshape(len(seg), -1).any(axis=1)  # tumour or resection cavity: always kept
    has_tumour = labelled & ((seg != 0) & ~cavity).reshape(len(seg), -1).any(axis=1)  # the cavity is not tumour
    has_brain = pre.brain.reshape(len(seg), -1).any(axis=1)
    negatives = np.flatnonzero(has_brain & ~labelled)
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, _stable_int(case.case_id)]))
    n_keep = int(round(settings.negative_fraction * len(negatives)))
    kept_neg = rng.choice(negatives, size=n_keep, replace=False) if n_keep else np.zeros(0, int)
    kept = np.sort(np.concatenate([np.flatnonzero(labelled), kept_neg])).astype(int)
    if out_dir is not None:
        save_array(out_dir / "cases" / f"{case.case_id}.img.npy", images)
        save_array(out_dir / "cases" / f"{case.case_id}.seg.npy", seg)
    return {
        "case": case.case_id,
        "group": case.group,
        "patient": case.patient or patient_of(case.case_id),
        "convention": case.convention,
        "label_edition": edition_of(case.convention, has_cavity=bool(cavity.any())),
        "cavity_voxels": int(cavity.sum()),
        "sources": {m: str(Path(case.images[m]).resolve()) for m in present},
        "available": list(present),
        "seg_source": str(Path(case.seg).resolve()),
        "shape": [int(s) for s in loaded.reference.shape[:3]],
        "affine": np.asarray(loaded.affine).round(6).tolist(),
        "spacing": list(loaded.spacing),
        "crop": crop,
        "slices": kept.tolist(),
        "tumour_slices": int(has_tumour.sum()),
        "brain_slices": int(has_brain.sum()),
        "modality_correlations": correlations,
        "enhancement_share": enhancement_share(loaded),
    }


def dataset_edition(metas: list[dict]) -> str:
    """The label edition of a prepared set: brats2024 when any case holds a resection cavity, else the
    first case's (2019 names: brats2019; 2023 names: brats2023)."""
    return "brats2024" if any(m["label_edition"] == "brats2024" for m in metas) else metas[0]["label_edition"]


def _median(values) -> float | None:
    """Median of the values that are not None (None when there are none)."""
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 5) if values else None


def _stable_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def fingerprint(settings: PrepareSettings, cases: list[Case]) -> str:
    payload = json.dumps({"settings": asdict(settings), "format": FORMAT_VERSION,
                          "cases": [[c.case_id, sorted(str(Path(p).resolve()) for p in c.images.values())]
                                    + ([c.patient] if c.patient else []) for c in cases]},
                         sort_keys=True, default=list)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _prepare_worker(args):
    case, settings, out_dir, force = args
    return prepare_case(case, settings, out_dir, force)


def prepare(brats: str | Path, out: str | Path, settings: PrepareSettings | None = None, *,
            workers: int = 1, progress: bool = True, force: bool = False) -> dict:
    """Prepare every case under ``brats`` into ``out``. Returns the metadata written to prepared.json.

    ``out`` is written atomically. If it already holds the same preparation (same settings and cases)
    it is left as it is; a different preparation there is an error.
    """
    settings = settings or PrepareSettings()
    settings.modalities = parse_modalities(settings.modalities)
    settings.validate()
    cases = discover_cases(brats)
    for case in cases:  # fail fast, before any work, on a missing modality or seg
        if not settings.allow_missing or len(case.missing(settings.modalities)) == len(settings.modalities):
            case.require(settings.modalities)
        if case.seg is None:
            raise GliomaskError(f"case {case.case_id} has no segmentation (<case>_seg.nii.gz) to train on", case.folder)
    fp = fingerprint(settings, cases)
    out = Path(out)
    if out.exists():
        existing = out / META_NAME
        if existing.is_file():
            try:
                old = json.loads(existing.read_text())
            except (OSError, ValueError):
                old = {}
            if old.get("fingerprint") == fp:
                return old
            raise GliomaskError("output folder already holds a different preparation; choose another --out", out)
        if any(out.iterdir()):
            raise GliomaskError("output folder exists and is not empty", out)
        out.rmdir()
    with atomic_output_dir(out) as tmp:
        (tmp / "cases").mkdir()
        jobs = [(case, settings, tmp, force) for case in cases]
        if workers > 1 and len(cases) > 1:
            with ProcessPoolExecutor(min(workers, len(cases))) as pool:
                metas = list(progress_bar(pool.map(_prepare_worker, jobs), total=len(jobs), desc="prepare", enabled=progress))
        else:
            metas = [_prepare_worker(j) for j in progress_bar(jobs, desc="prepare", enabled=progress)]
        if not any(m["tumour_slices"] for m in metas):
            raise GliomaskError("no case has any tumour label: nothing to learn lesions from", brats)
        geometry = training_geometry(metas)  # one orientation and spacing, or nothing is written
        typical = typical_correlations([m["modality_correlations"] for m in metas])
        if len(metas) >= 3:  # a case whose files look swapped beside the others (the median is theirs)
            # against the other cases only: a training set is its own reference (an odd synthetic case can fit
            # real scans' correlations better than its siblings' without being swapped)
            report([problem for case, m in zip(cases, metas) for problem in swap_problems(
                case.images, swapped_modalities(m["modality_correlations"], typical, list(settings.modalities)),
                "the other cases")], force)
        folds = make_folds([m["case"] for m in metas], [m["group"] for m in metas], settings.folds, settings.seed,
                           patients=[m["patient"] for m in metas])
        meta = {
            "format": FORMAT_VERSION,
            "gliomask_version": __version__,
            "fingerprint": fp,
            "source": str(Path(brats).resolve()),
            "settings": {**asdict(settings), "modalities": list(settings.modalities),
                         "clip_percentiles": list(settings.clip_percentiles)},
            "classes": class_names(settings.scheme),
            "label_convention": "brats2019",
            "label_edition": dataset_edition(metas),
            "geometry": geometry,
            "modality_correlations": typical,
            "enhancement_share": _median([m["enhancement_share"] for m in metas]),
            "cases": metas,
            "folds": folds,
        }
        write_json(tmp / META_NAME, meta)
    return meta
