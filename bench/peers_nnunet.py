"""nnU-Net v2 as a peer of bench/peers.py: converted, planned, preprocessed, trained and predicted by nnU-Net itself.

What is ours and what is nnU-Net's:
- Conversion as nnU-Net's own BraTS 2021 script (Dataset137) does it: one channel per modality, labels
  0 background, 1 oedema, 2 necrotic / non-enhancing core, 3 enhancing, trained region-based on
  whole tumour (1, 2, 3), tumour core (2, 3) and enhancing (3) with ``regions_class_order`` (1, 2, 3).
- Fingerprint, plan (the default ``ExperimentPlanner``) and preprocessing of the one configuration asked
  for (``2d`` or ``3d_fullres``) through nnU-Net's Python API, unchanged.
- Training: ``nnUNetTrainerWallClock``, a subclass of the default ``nnUNetTrainer`` that differs in one thing:
  it stops when the wall-clock budget is spent. nnU-Net's poly learning-rate schedule runs over that
  budget instead of over 1000 epochs of 250 steps (``lr = 0.01 (1 - t / budget) ** 0.9``), and epochs are
  short (25 steps, 2 validation steps) so that the stop falls close to the budget. Everything else
  (network, loss, deep supervision, augmentation, oversampling, data-augmentation processes) is nnU-Net's
  default; trained on fold ``all`` (every training case), as nnU-Net trains a final model.
- Prediction: ``nnUNetPredictor`` with its defaults (step 0.5, Gaussian weighting, mirroring TTA), and again
  without mirroring; labels mapped back to BraTS values by gliomask's label convention of the test case.

This module imports nnU-Net only inside :func:`run_nnunet` (nnU-Net reads its folders from the environment
when it is imported, so the variables are set first).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np

DATASET_ID = 990
DATASET_NAME = f"Dataset{DATASET_ID}_gliomaskPeers"
CHANNEL_NAMES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "Flair"}
TO_NNUNET = {0: 0, 2: 1, 1: 2, 4: 3}  # internal gliomask label -> nnU-Net's BraTS label (Dataset137)
# the same mapping as look-up tables, one each way: labels[lut] relabels a whole map in one pass; any other
# value (BraTS 2024's resection cavity, internal 5) is no tumour region and becomes background, as before
TO_NNUNET_LUT = np.zeros(256, np.uint8)
TO_NNUNET_LUT[list(TO_NNUNET)] = list(TO_NNUNET.values())
TO_INTERNAL_LUT = np.zeros(max(TO_NNUNET.values()) + 1, np.uint8)
TO_INTERNAL_LUT[list(TO_NNUNET.values())] = list(TO_NNUNET)


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    target.symlink_to(Path(source).resolve())


def _write_labels(case, modalities, target: Path) -> None:
    """The case's label map, checked and read by gliomask, written in nnU-Net's labels on the case's grid."""
    from gliomask.io.brats import load_case
    from gliomask.io.nifti import save_like

    loaded = load_case(case, modalities[:1])
    seg = TO_NNUNET_LUT[loaded.seg]
    target.parent.mkdir(parents=True, exist_ok=True)
    save_like(seg, loaded.reference, target)


def convert(train_cases, test_cases, modalities, raw: Path) -> Path:
    """A BraTS-layout case list -> ``raw/Dataset990_gliomaskPeers`` (imagesTr, labelsTr, imagesTs, dataset.json)."""
    folder = raw / DATASET_NAME
    for subfolder, cases in (("imagesTr", train_cases), ("imagesTs", test_cases)):
        for case in cases:
            case.require(modalities)
            for k, mod in enumerate(modalities):
                _link(case.images[mod], folder / subfolder / f"{case.case_id}_{k:04d}.nii.gz")
    for case in train_cases:
        _write_labels(case, modalities, folder / "labelsTr" / f"{case.case_id}.nii.gz")
    dataset = {
        "channel_names": {str(k): CHANNEL_NAMES[m] for k, m in enumerate(modalities)},
        "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
        "regions_class_order": [1, 2, 3],
        "numTraining": len(train_cases),
        "file_ending": ".nii.gz",
        "description": "written by gliomask bench/peers.py",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    return folder


def _wall_clock_trainer(budget_s: float):
    """nnU-Net's default trainer, stopped by the clock (see the module's docstring)."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class nnUNetTrainerWallClock(nnUNetTrainer):
        def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cpu")):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_iterations_per_epoch = 25
            self.num_val_iterations_per_epoch = 2
            self.num_epochs = 10 ** 6  # the clock stops training, not the epoch count
            self.steps = 0

        def run_training(self):
            self.on_train_start()
            start = time.monotonic()

            def spent() -> float:
                return (time.monotonic() - start) / budget_s

            while spent() < 1.0:
                self.on_epoch_start()
                self.on_train_epoch_start()
                outputs = []
                for _ in range(self.num_iterations_per_epoch):
                    if spent() >= 1.0:
                        break
                    for group in self.optimizer.param_groups:  # nnU-Net's poly schedule, over the budget
                        group["lr"] = self.initial_lr * (1.0 - spent()) ** 0.9
                    outputs.append(self.train_step(next(self.dataloader_train)))
                    self.steps += 1
                self.on_train_epoch_end(outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    val = [self.validation_step(next(self.dataloader_val))
                           for _ in range(self.num_val_iterations_per_epoch)]
                    self.on_validation_epoch_end(val)
                self.on_epoch_end()
            self.on_train_end()

    return nnUNetTrainerWallClock


def _to_internal(nnunet_labels: np.ndarray) -> np.ndarray:
    return TO_INTERNAL_LUT[nnunet_labels]  # nnU-Net writes only its own labels 0-3


def run_nnunet(configuration: str, write, train_dir: Path, test_cases, minutes: float, work: Path, modalities: str,
               pred: Path, device: str = "cpu") -> dict:
    """Train nnU-Net ``configuration`` for ``minutes`` on ``train_dir``; predict ``test_cases`` into ``pred``
    (mirroring TTA, nnU-Net's default) and ``pred.parent / 'pred_noTTA'`` (without); ``write(labels, case,
    reference, folder)`` writes one internal label map as the case's own edition."""
    from gliomask.io.brats import discover_cases, load_case, parse_modalities

    mods = parse_modalities(modalities)
    t0 = time.monotonic()
    for name in ("raw", "preprocessed", "results"):
        os.environ[f"nnUNet_{name}"] = str(work / f"nnUNet_{name}")
        (work / f"nnUNet_{name}").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("nnUNet_compile", "false")  # nnU-Net turns compile off on CPU anyway; say so
    folder = convert(discover_cases(train_dir), test_cases, mods, work / "nnUNet_raw")

    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    threads = torch.get_num_threads()
    extract_fingerprints([DATASET_ID], num_processes=threads, check_dataset_integrity=True, verbose=False,
                         show_progress_bar=False)
    plans_name = plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], plans_name, configurations=(configuration,), num_processes=(threads,),
               show_progress_bar=False)
    torch.set_num_threads(threads)  # the planner changes it
    preprocessed = work / "nnUNet_preprocessed" / DATASET_NAME
    plans = json.loads((preprocessed / f"{plans_name}.json").read_text())
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    plans["continue_training"] = False  # as nnunetv2.run.run_training sets it for a fresh run
    device = torch.device(device)
    trainer = _wall_clock_trainer(minutes * 60.0)(plans, configuration, "all", dataset_json, device)
    trainer.run_training()
    train_s = time.monotonic() - t0

    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    stats = {"train_s": train_s, "steps": trainer.steps, "variants": {}}
    references = {case.case_id: load_case(case, mods[:1], with_seg=False).reference for case in test_cases}
    for variant, mirroring in (("", True), ("noTTA", False)):
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                    perform_everything_on_device=device.type == "cuda", device=device,
                                    verbose=False, allow_tqdm=False)
        predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager,
                                        [trainer.network.state_dict()], trainer.dataset_json,
                                        type(trainer).__name__, trainer.inference_allowed_mirroring_axes)
        out = work / f"nnunet_out{variant}"
        seconds = []
        for case in test_cases:  # one case at a time, so each one's time is its own
            images = [[str(folder / "imagesTs" / f"{case.case_id}_{k:04d}.nii.gz") for k in range(len(mods))]]
            t1 = time.monotonic()
            predictor.predict_from_files(images, [str(out / case.case_id)], save_probabilities=False,
                                         overwrite=True, num_processes_preprocessing=1,
                                         num_processes_segmentation_export=1)
            seconds.append(time.monotonic() - t1)
            labels = np.asarray(nib.load(str(out / f"{case.case_id}.nii.gz")).dataobj)
            target = pred if not variant else pred.parent / f"pred_{variant}"
            target.mkdir(parents=True, exist_ok=True)
            write(_to_internal(labels), case, references[case.case_id], target)
        if variant:
            stats["variants"][variant] = {"predict_s": seconds}
        else:
            stats["predict_s"] = seconds
        torch.set_num_threads(threads)  # nnU-Net's predictor sets its own thread count
    return stats
