"""`Predictor`: a checkpoint in, BraTS label maps and lesion lists out, with or without files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from gliomask.config import load_config
from gliomask.data.geometry import ModelGrid
from gliomask.io.nifti import spacing_of
from gliomask.data.plausibility import case_problems, report
from gliomask.data.planes import AXES, plane_dim
from gliomask.data.preprocess import Preprocessed, preprocess
from gliomask.errors import GliomaskError
from gliomask.inference.core import PostProcessing, regions_from_probabilities, volume_outputs
from gliomask.inference.lesions import lesion_report
from gliomask.inference.onnx_backend import OnnxSliceModel, is_onnx
from gliomask.io.brats import Case, LoadedCase, load_case
from gliomask.labels import STRUCTURE_3D, labels_from_regions
from gliomask.models.checkpoint import load_checkpoint
from gliomask.models.factory import model_from_checkpoint, resolve_device
from gliomask.models.fusion import fuse_conv_bn


@dataclass
class Prediction:
    """``labels`` UInt8 [X, Y, Z] internal convention (0/1/2/4); ``regions`` Bool [3, X, Y, Z] WT, TC, ET;
    ``scores`` Float32 [X, Y, Z] highest detection score per voxel; ``probabilities`` Float32 [3, X, Y, Z]
    WT, TC, ET probabilities (0 outside the brain crop); ``lesions`` per-lesion dicts."""

    labels: np.ndarray
    regions: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    lesions: list[dict]
    probabilities: np.ndarray | None = field(default=None, repr=False)

    def uncertainty(self) -> np.ndarray:
        """UInt8 [3, X, Y, Z] 0-100 per region (BraTS 2019 uncertainty task): 100 at probability 0.5,
        0 where the model is sure either way."""
        p = self.probabilities
        return np.rint(100 * (1 - np.abs(2 * p - 1))).astype(np.uint8)


class Predictor:
    """Rebuilds the trained model from a checkpoint alone and predicts whole cases."""

    def __init__(self, checkpoint: dict, *, device: str = "auto", tta: bool | None = None, source: str = "checkpoint",
                 planes: list[str] | None = None, model=None, amp: bool = False,
                 whole_tumour_modalities: list[str] | None = None):
        """``checkpoint``: a checkpoint's dict (or an ONNX export's metadata, with ``model`` its network).
        ``tta``: flip test-time augmentation (default: the checkpoint's ``infer.tta``, on unless it says otherwise).
        ``amp``: float16 autocast on a GPU (the post-processing was chosen on float32 outputs; off by default).
        ``whole_tumour_modalities``: see `detect` (default: the checkpoint's ``infer.whole_tumour_modalities``,
        used when some of its training cases had exactly those modalities; given here, used whenever it applies)."""
        self.meta = checkpoint
        if model is None:
            self.model, self.cfg = model_from_checkpoint(checkpoint, source)
        else:
            self.model, self.cfg = model, load_config(base=checkpoint["config"])
        self.classes = list(checkpoint["classes"])
        self.modalities = tuple(checkpoint["modalities"])
        self.scheme = checkpoint["scheme"]
        self.axis = AXES[checkpoint["axis"]]
        self.norm = checkpoint["normalization"]
        self.device = resolve_device(device)
        self.tta = self.cfg.infer.tta if tta is None else bool(tta)
        self.amp = bool(amp) and self.device.type == "cuda"
        wanted = self.cfg.infer.whole_tumour_modalities if whole_tumour_modalities is None else whole_tumour_modalities
        unknown = [m for m in wanted if m not in self.modalities]
        if unknown and whole_tumour_modalities is not None:
            raise GliomaskError(f"the checkpoint reads {', '.join(self.modalities)}, not {', '.join(unknown)}", source)
        subset = tuple(m for m in self.modalities if m in wanted)
        # By default the second pass is made only for a model that had whole training cases with just these
        # modalities (the nine real patients: four of them FLAIR + T1ce only): a model that met the subset only
        # through modality dropout drew a worse whole tumour from it (the demo's: WT 0.900 -> 0.635).
        # A model without flags reads every modality or none.
        learnt = [tuple(t) for t in checkpoint.get("trained_modality_sets") or []]
        self.whole_tumour_modalities = subset if self.any_subset and not unknown and subset and (
            whole_tumour_modalities is not None or subset in learnt) else ()
        self.context = int(checkpoint.get("context", 0))
        trained = list(checkpoint.get("planes") or [checkpoint["axis"]])
        self.planes = list(planes) if planes else trained
        unknown = [p for p in self.planes if p not in trained]
        if unknown:
            raise GliomaskError(f"the checkpoint was trained on planes {', '.join(trained)}, not {', '.join(unknown)}", source)
        self.dims = tuple(plane_dim(checkpoint["axis"], p) for p in self.planes)
        tuned = checkpoint.get("postprocessing")
        self.post = PostProcessing(**{**tuned, "region_thresholds": tuple(tuned["region_thresholds"]),
                                      "score_thresholds": tuple(tuned["score_thresholds"]) if tuned["score_thresholds"] else None}
                                   ) if tuned else PostProcessing.from_config(self.cfg.infer)
        if model is None:  # BatchNorm folded into convolutions: the same outputs in less time
            fuse_conv_bn(self.model)
        self.model.to(self.device)
        self.others: list[Predictor] = []  # further models of an ensemble (`from_checkpoints`)
        self.source = source

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto", tta: bool | None = None,
                        planes: list[str] | None = None, backend: str = "auto", amp: bool = False,
                        whole_tumour_modalities: list[str] | None = None) -> "Predictor":
        """``path``: a checkpoint (``backend`` torch) or a `gliomask export` ONNX file (``backend`` onnx,
        onnxruntime on the CPU); ``auto`` tells them apart by the suffix."""
        if backend not in ("auto", "torch", "onnx"):
            raise GliomaskError(f"unknown backend {backend!r}; choose auto, torch or onnx")
        if backend == "onnx" or (backend == "auto" and is_onnx(path)):
            if not is_onnx(path):
                raise GliomaskError("--backend onnx needs an ONNX file; make one with `gliomask export`", path)
            if not Path(path).is_file():
                raise GliomaskError("ONNX model not found", path)
            model = OnnxSliceModel(path)
            return cls(model.meta, device="cpu" if device == "auto" else device, tta=tta, source=str(path),
                       planes=planes, model=model, whole_tumour_modalities=whole_tumour_modalities)
        return cls(load_checkpoint(path), device=device, tta=tta, source=str(path), planes=planes, amp=amp,
                   whole_tumour_modalities=whole_tumour_modalities)

    @classmethod
    def from_checkpoints(cls, paths, **kwargs) -> "Predictor":
        """Several checkpoints (or ONNX exports) as one model, an ensemble: every model predicts each case
        (with its own flips and planes) and their region probabilities and detection scores are averaged
        before the post-processing, as nnU-Net predicts with its fold models. The models must read the same
        modalities on the same grid with the same preprocessing; the first one's post-processing, whole-tumour
        pass and plausibility checks apply. ``kwargs``: as `from_checkpoint`. One path: that model alone."""
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise GliomaskError("no checkpoint given")
        first = cls.from_checkpoint(paths[0], **kwargs)
        for path in paths[1:]:
            first.add_member(cls.from_checkpoint(path, **kwargs))
        return first

    def add_member(self, other: "Predictor") -> None:
        """Average ``other``'s outputs with this model's (and its earlier members') from now on; refused
        when it would read a case differently (`from_checkpoints`)."""
        def reads(p: "Predictor") -> dict:
            return {"modalities": p.modalities, "slice axis": p.axis, "label scheme": p.scheme, "normalisation": p.norm,
                    "model grid": p.meta.get("geometry"), "modality flags": p.any_subset}
        mine, theirs = reads(self), reads(other)
        differ = [key for key in mine if mine[key] != theirs[key]]
        if differ:
            raise GliomaskError(f"cannot ensemble with {self.source}: it differs in {', '.join(differ)} "
                                f"({'; '.join(f'{mine[k]} vs {theirs[k]}' for k in differ)})", other.source)
        self.others.append(other)

    @property
    def any_subset(self) -> bool:
        """Whether the model reads any non-empty subset of its modalities (trained with modality flags)."""
        return bool(self.cfg.model.modality_flags)

    def check(self, case: Case) -> None:
        """A case must have every modality the checkpoint was trained on, or (a model trained with
        modality flags) at least one of them."""
        missing = case.missing(self.modalities)
        if missing and (not self.any_subset or len(missing) == len(self.modalities)):
            need = "" if not self.any_subset else "at least one of "
            raise GliomaskError(f"the checkpoint needs {need}modalities {', '.join(self.modalities)}; "
                                f"case {case.case_id} lacks {', '.join(missing)}", case.folder or case.case_id)

    def load(self, case: Case) -> LoadedCase:
        self.check(case)
        return load_case(case, self.modalities, with_seg=False, allow_missing=self.any_subset)

    def check_content(self, case: Case, *, force: bool = False) -> LoadedCase:
        """Load a case and refuse what the model cannot read (:mod:`gliomask.data.plausibility`):
        unreadable or mismatched files always; a non-zero background, a blank modality, one image
        under two names or files that look swapped unless ``force`` (then a warning per finding).
        Returns the loaded case (to predict without reading it again)."""
        loaded = self.load(case)
        report(case_problems(case, loaded, self.meta.get("modality_correlations"),
                             self.meta.get("enhancement_share")), force)
        return loaded

    def detect(self, images: np.ndarray, present: tuple[str, ...] | None = None, *, whole_tumour_pass: bool = True
               ) -> tuple[np.ndarray, np.ndarray, Preprocessed]:
        """Float32 [C, X, Y, Z] raw intensities -> (Float32 [3, S, A, B] probabilities, Float32 [S, A, B]
        detection scores, the preprocessing that maps them back), S along the checkpoint's axis, fused
        over its planes. ``present``: the modalities given (default all); the others' channels are
        ignored and flagged absent.

        With ``whole_tumour_pass`` and ``whole_tumour_modalities`` a strict subset of ``present``, the WT
        probability comes from a second pass that sees only that subset (the same slices, the other
        modalities flagged absent) and the scores are the higher of the two passes: trained on few
        patients with T1 and T2, the model's whole tumour generalised better from FLAIR and T1ce alone
        (cross-validated on nine real patients; see ``infer.whole_tumour_modalities``).
        """
        if images.ndim != 4 or images.shape[0] != len(self.modalities):
            raise GliomaskError(f"expected images [C={len(self.modalities)}, X, Y, Z] "
                                f"({', '.join(self.modalities)}), got shape {tuple(images.shape)}")
        if not np.all(np.isfinite(images)):
            raise GliomaskError("images hold NaN or infinite values")
        pre = preprocess(images, axis=self.axis, clip_percentiles=self.norm["clip_percentiles"],
                         crop_margin=self.norm["crop_margin"])
        present = self.modalities if present is None else tuple(present)
        prob, scores = self._outputs(pre, present)
        wt = self.whole_tumour_modalities
        if whole_tumour_pass and wt and set(wt) < set(present):
            prob_wt, scores_wt = self._outputs(pre, wt)
            prob[0] = prob_wt[0]
            np.maximum(scores, scores_wt, out=scores)
        return prob, scores, pre

    def _outputs(self, pre: Preprocessed, present: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Float32 [3, S, A, B] probabilities and [S, A, B] scores: this model's, or the mean over the ensemble's."""
        prob, scores = self._model_outputs(pre, present)
        for other in self.others:
            p, s = other._model_outputs(pre, present)
            prob += p
            scores += s
        if self.others:
            prob /= 1 + len(self.others)
            scores /= 1 + len(self.others)
        return prob, scores

    def _model_outputs(self, pre: Preprocessed, present: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        flags = np.array([m in present for m in self.modalities], np.float32) if self.any_subset else None
        return volume_outputs(self.model, pre.volume, scheme=self.scheme, post=self.post, dims=self.dims,
                              batch_size=self.cfg.infer.batch_size, device=self.device, tta=self.tta,
                              amp=self.amp, context=self.context, available=flags)

    def predict_case(self, images, affine: np.ndarray | None = None, spacing=None, frame: str = "ras") -> Prediction:
        """Predict one case.

        Args:
            images: a ``Case`` (files), a ``LoadedCase``, a dict {modality: Float [X, Y, Z]}, or
                Float [C, X, Y, Z] in the checkpoint's modality order. A model trained with modality
                flags takes any non-empty subset (a case or dict without T2, say).
            affine: the voxel-to-mm matrix (from the files when given a case), for the lesion report.
            frame: ras or lps, the frame of the lesion report's mm positions.
        """
        present = self.modalities
        if isinstance(images, Case):
            images = self.load(images)
        if isinstance(images, LoadedCase):
            affine, spacing, present = images.affine, images.spacing, images.present
            images = images.images
        elif isinstance(images, dict):
            missing = [m for m in self.modalities if m not in images]
            if missing and (not self.any_subset or len(missing) == len(self.modalities)):
                need = "at least one of " if self.any_subset else ""
                raise GliomaskError(f"the checkpoint needs {need}modalities {', '.join(self.modalities)}; "
                                    f"missing {', '.join(missing)}")
            present = tuple(m for m in self.modalities if m in images)
            shape = np.shape(images[present[0]])
            for m in present:
                if np.ndim(images[m]) != 3 or np.shape(images[m]) != shape:
                    raise GliomaskError(f"modality {m}: array of shape {tuple(np.shape(images[m]))}, but "
                                        f"{present[0]} has {tuple(shape)}; every modality must be one 3-D array "
                                        "of the same shape")
            images = np.stack([np.asarray(images[m], dtype=np.float32) if m in images else np.zeros(shape, np.float32)
                               for m in self.modalities])
        images = np.asarray(images, dtype=np.float32)
        if affine is not None and np.shape(affine) != (4, 4):
            raise GliomaskError(f"affine must be a 4 x 4 voxel-to-mm matrix, got shape {tuple(np.shape(affine))}")
        # With an affine the input is mapped to the voxel orientation and spacing the model was trained on,
        # and the outputs back onto the input's own grid; without one it is taken as already there.
        geometry = self.meta.get("geometry")
        grid = ModelGrid(affine, images.shape, geometry) if affine is not None and geometry else None
        if grid is not None and grid.identity:
            grid = None
        affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
        spacing = tuple(spacing_of(affine)) if spacing is None else tuple(spacing)
        prob_slices, scores_slices, pre = self.detect(grid.forward(images) if grid else images, present)
        regions = pre.restore(regions_from_probabilities(prob_slices, scores_slices, self.post))
        prob, scores = pre.restore(prob_slices), pre.restore(scores_slices)
        components = None
        if grid is not None:
            # lesions are what the model found on its own grid: a lesion that the mapping back to a coarser
            # grid splits into pieces stays one lesion (its pieces would carry no detection score of their own)
            components = grid.backward(ndimage.label(regions[0], structure=STRUCTURE_3D)[0], order=0)
            regions = grid.backward(regions, order=0)
            prob, scores = grid.backward(prob, order=1), grid.backward(scores, order=0)
        labels = labels_from_regions(regions)
        scores[labels == 0] = 0
        lesions = lesion_report(labels, affine, spacing, scores=scores, slice_axis=self.axis, probabilities=prob[0],
                                frame=frame, components=components)
        return Prediction(labels, regions, scores, lesions, prob)
