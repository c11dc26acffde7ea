"""`gliomask predict`: label maps, lesion reports and overlays for a case, a folder or a manifest."""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import numpy as np
import torch

from gliomask.errors import GliomaskError
from gliomask.inference.predictor import Predictor
from gliomask.io.atomic import remove_stale_temporaries
from gliomask.io.brats import Case, check_output_folder, discover_cases, select_cases
from gliomask.io.lesion_table import FRAMES, case_totals, write_lesion_report
from gliomask.io.nifti import save_like
from gliomask.labels import CONVENTIONS, RESECTION_CAVITY, to_convention
from gliomask.utils import default_threads, progress_bar

UNCERTAINTY_NAMES = ("whole", "core", "enhance")  # BraTS 2019 file suffixes for WT, TC, ET
KEEP_LOADED_BYTES = 2 * 1024 ** 3  # cases read by the checks and kept for prediction (a BraTS case: 143 MB)


def predict_cases(inputs: str | Path, out: str | Path, checkpoint: str | Path | list, *, device: str = "auto",
                  tta: bool | None = None, threads: int | None = None, convention: str = "auto",
                  overlays: bool = True, progress: bool = True, case_ids: list[str] | None = None,
                  probabilities: bool = False, planes: list[str] | None = None, backend: str = "auto",
                  lesion_frame: str = "ras", on_case=None, force: bool = False, amp: bool = False,
                  whole_tumour_modalities: list[str] | None = None) -> list[dict]:
    """Predict every case under ``inputs`` (a folder, a manifest, or one `Case`) into ``out``; returns one
    summary dict per case.

    Writes per case ``<case>_seg.nii.gz`` (uint8, the input's affine and a copy of its header),
    ``<case>_lesions.json`` / ``.csv``, ``<case>_overlay.png`` and ``<case>_report.html``; with ``probabilities`` also
    ``<case>_prob.nii.gz`` (float32 [X, Y, Z, 3]: WT, TC, ET) and the BraTS 2019 uncertainty maps
    ``<case>_unc_whole.nii.gz``, ``_unc_core``, ``_unc_enhance`` (uint8 0-100), all on the input's grid.
    Every file is written atomically. ``lesion_frame``: ras (NIfTI scanner RAS+) or lps (DICOM/ITK) for the
    lesion tables' mm columns. ``on_case(result)`` is called as each case is finished. Every case is
    loaded and checked first (files, grids, plausibility); ``force`` turns plausibility findings into warnings.
    Cases checked are kept in memory up to ``KEEP_LOADED_BYTES`` and not read again to be predicted (one case,
    or a few, is read once). Under torchrun, cases are sharded across processes by rank first, and each
    process checks its own share. ``case_ids`` keeps only those cases;
    ``planes`` fuses only these of the checkpoint's trained planes (default: all of them). ``checkpoint``
    may be a `gliomask export` ONNX file, run by onnxruntime (``backend`` onnx, or auto by its suffix).
    ``tta``: flip test-time augmentation; None follows the checkpoint's ``infer.tta`` (on by default).
    Several checkpoints (a list) predict as one ensemble (`Predictor.from_checkpoints`: their probabilities
    averaged, the first one's post-processing).
    """
    if convention not in ("auto", *CONVENTIONS):
        raise GliomaskError(f"unknown label convention {convention!r}; choose auto, {', '.join(CONVENTIONS)}")
    if lesion_frame not in FRAMES:
        raise GliomaskError(f"unknown lesion frame {lesion_frame!r}; choose {' or '.join(FRAMES)}")
    if threads is not None and threads < 1:
        raise GliomaskError(f"--threads must be at least 1, got {threads}")
    threads = threads or default_threads()
    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor.from_checkpoints(checkpoint, device=device, tta=tta, planes=planes, backend=backend, amp=amp,
                                          whole_tumour_modalities=whole_tumour_modalities)
    cases = [inputs] if isinstance(inputs, Case) else select_cases(discover_cases(inputs), case_ids, inputs)
    check_output_folder(Path(out), cases)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cases = cases[rank::world]
    loaded, kept = {}, 0
    for case in cases:  # every case must load and be plausible before any output is written
        case_loaded = predictor.check_content(case, force=force)
        size = case_loaded.images.nbytes
        if kept + size <= KEEP_LOADED_BYTES:
            loaded[case.case_id] = case_loaded
            kept += size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if world == 1:  # (under torchrun another rank may be writing its own temporary file there now)
        stale = remove_stale_temporaries(out)
        if stale:
            print(f"gliomask: removed {len(stale)} unfinished temporary file(s) left in {out} by an interrupted "
                  f"run: {', '.join(p.name for p in stale)}", file=sys.stderr, flush=True)
    results = []
    for case in progress_bar(cases, desc="predict", enabled=progress):
        try:
            result = _predict_one(case, predictor, out, checkpoint=checkpoint, convention=convention,
                                  lesion_frame=lesion_frame, probabilities=probabilities, overlays=overlays,
                                  loaded=loaded.pop(case.case_id, None))
        except BaseException:  # all of a case's outputs or none: a full disk must not leave half of them
            for path in out.glob(f"{glob.escape(case.case_id)}_*"):
                if path.name[len(case.case_id) + 1:] in CASE_OUTPUTS:
                    path.unlink()
            raise
        results.append(result)
        if on_case is not None:
            on_case(result)
    return results


# what predict writes per case, after "<case>_"
CASE_OUTPUTS = ("seg.nii.gz", "prob.nii.gz", *(f"unc_{n}.nii.gz" for n in UNCERTAINTY_NAMES),
                "lesions.json", "lesions.csv", "overlay.png", "report.html")


def output_edition(naming: str, labels) -> str:
    """``predict --labels auto``: the input's own edition; 2023-style names with a predicted resection
    cavity are written as BraTS 2024 (the only edition with a cavity label)."""
    return "brats2024" if naming == "brats2023" and np.any(labels == RESECTION_CAVITY) else naming


def _predict_one(case, predictor, out: Path, *, checkpoint, convention: str, lesion_frame: str, probabilities: bool,
                 overlays: bool, loaded=None) -> dict:
    """Predict one case (``loaded``: its voxels when already read) and write its outputs; returns its
    summary line's figures."""
    loaded = predictor.load(case) if loaded is None else loaded
    pred = predictor.predict_case(loaded, frame=lesion_frame)
    seg_path = out / f"{case.case_id}_seg.nii.gz"
    labels_as = output_edition(case.convention, pred.labels) if convention == "auto" else convention
    save_like(to_convention(pred.labels, labels_as), loaded.reference, seg_path)
    if probabilities:
        save_like(np.moveaxis(pred.probabilities, 0, -1), loaded.reference, out / f"{case.case_id}_prob.nii.gz",
                  dtype=np.float32)
        for name, unc in zip(UNCERTAINTY_NAMES, pred.uncertainty()):
            save_like(unc, loaded.reference, out / f"{case.case_id}_unc_{name}.nii.gz")
    provenance = predictor.meta.get("provenance") or {}
    lesion_json = out / f"{case.case_id}_lesions.json"
    write_lesion_report(pred.lesions, lesion_json, out / f"{case.case_id}_lesions.csv",
                        case_id=case.case_id, extra={"checkpoint": checkpoint_names(checkpoint),
                                                     "label_convention": labels_as, "spacing_mm": list(loaded.spacing),
                                                     "trained_on": provenance.get("train_cases", [])})
    if overlays:
        from gliomask.viz.overlay import save_overlay
        from gliomask.viz.report import write_case_report

        images = {m: loaded.images[i] for i, m in enumerate(loaded.modalities) if m in loaded.present}
        overlay = save_overlay(images, out / f"{case.case_id}_overlay.png", affine=loaded.affine,
                               pred=pred.labels, title=f"{case.case_id}: prediction")
        write_case_report(out / f"{case.case_id}_report.html", case_id=case.case_id, lesions=pred.lesions,
                          totals=case_totals(pred.lesions), overlay_png=overlay,
                          provenance=_case_provenance(case, checkpoint, predictor, labels_as, seg_path))
    return {"case": case.case_id, "seg": str(seg_path), "lesions": len(pred.lesions),
            "volume_ml": sum(les["volume_ml"] for les in pred.lesions)}


def checkpoint_names(checkpoint) -> str:
    """The model(s) a prediction came from, as reports name them (an ensemble's, comma-separated)."""
    return ", ".join(map(str, checkpoint)) if isinstance(checkpoint, (list, tuple)) else str(checkpoint)


def _case_provenance(case, checkpoint, predictor, labels_as: str, seg_path: Path) -> dict:
    """What produced a case report: inputs, model, settings (shown at its foot)."""
    meta = predictor.meta
    trained = (meta.get("provenance") or {}).get("train_cases") or []
    config = meta.get("config") or {}
    return {"case files": ", ".join(str(p) for p in case.images.values()), "label map": str(seg_path),
            "checkpoint": checkpoint_names(checkpoint), "model": (config.get("model") or {}).get("backbone", ""),
            "modalities used": ", ".join(meta.get("modalities") or []),
            "planes fused": ", ".join(getattr(predictor, "planes", None) or []),
            "trained on": f"{len(trained)} cases" if trained else "",
            "label convention": labels_as, "post-processing": meta.get("postprocessing", "")}
