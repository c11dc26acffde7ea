"""`gliomask predict`: label maps, lesion reports and overlays for a case, a folder or a manifest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gliomask.errors import GliomaskError
from gliomask.inference.lesions import write_lesion_report
from gliomask.inference.predictor import Predictor
from gliomask.inference.regions import to_convention
from gliomask.io.brats import discover_cases
from gliomask.io.nifti import save_like
from gliomask.utils import progress_bar

UNCERTAINTY_NAMES = ("whole", "core", "enhance")  # BraTS 2019 file suffixes for WT, TC, ET


def predict_cases(inputs: str | Path, out: str | Path, checkpoint: str | Path, *, device: str = "cpu",
                  tta: bool = False, threads: int | None = None, convention: str = "brats2019",
                  overlays: bool = True, progress: bool = True, case_ids: list[str] | None = None,
                  probabilities: bool = False, planes: list[str] | None = None) -> list[dict]:
    """Predict every case under ``inputs`` into ``out``; returns one summary dict per case.

    Writes per case ``<case>_seg.nii.gz`` (uint8, the input's affine and a copy of its header),
    ``<case>_lesions.json`` / ``.csv`` and ``<case>_overlay.png``; with ``probabilities`` also
    ``<case>_prob.nii.gz`` (float32 [X, Y, Z, 3]: WT, TC, ET) and the BraTS 2019 uncertainty maps
    ``<case>_unc_whole.nii.gz``, ``_unc_core``, ``_unc_enhance`` (uint8 0-100), all on the input's grid.
    Every file is written atomically.
    Under torchrun, cases are sharded across processes by rank. ``case_ids`` keeps only those cases;
    ``planes`` fuses only these of the checkpoint's trained planes (default: all of them).
    """
    if convention not in ("brats2019", "brats2023"):
        raise GliomaskError(f"unknown label convention {convention!r}; choose brats2019 or brats2023")
    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor.from_checkpoint(checkpoint, device=device, tta=tta, planes=planes)
    cases = select_cases(discover_cases(inputs), case_ids, inputs)
    for case in cases:  # every case must be usable before any output is written
        predictor.check(case)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cases = cases[rank::world]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for case in progress_bar(cases, desc="predict", enabled=progress):
        loaded = predictor.load(case)
        pred = predictor.predict_case(loaded)
        seg_path = out / f"{case.case_id}_seg.nii.gz"
        save_like(to_convention(pred.labels, convention), loaded.reference, seg_path)
        if probabilities:
            save_like(np.moveaxis(pred.probabilities, 0, -1), loaded.reference, out / f"{case.case_id}_prob.nii.gz",
                      dtype=np.float32)
            for name, unc in zip(UNCERTAINTY_NAMES, pred.uncertainty()):
                save_like(unc, loaded.reference, out / f"{case.case_id}_unc_{name}.nii.gz")
        provenance = predictor.meta.get("provenance") or {}
        write_lesion_report(pred.lesions, out / f"{case.case_id}_lesions.json", out / f"{case.case_id}_lesions.csv",
                            case_id=case.case_id, extra={"checkpoint": str(checkpoint), "label_convention": convention,
                                                         "spacing_mm": list(loaded.spacing),
                                                         "trained_on": provenance.get("train_cases", [])})
        if overlays:
            from gliomask.viz.overlay import save_overlay

            images = {m: loaded.images[i] for i, m in enumerate(loaded.modalities)}
            save_overlay(images, out / f"{case.case_id}_overlay.png", pred=pred.labels, title=f"{case.case_id}: prediction")
        results.append({"case": case.case_id, "seg": str(seg_path), "lesions": len(pred.lesions),
                        "volume_ml": sum(les["volume_ml"] for les in pred.lesions)})
    return results


def select_cases(cases, case_ids: list[str] | None, root):
    """Keep the cases named in ``case_ids`` (all when None); a named case that is absent is an error."""
    if case_ids is None:
        return cases
    found = {c.case_id for c in cases}
    absent = [c for c in case_ids if c not in found]
    if absent:
        raise GliomaskError(f"cases not found: {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}", root)
    return [c for c in cases if c.case_id in set(case_ids)]
