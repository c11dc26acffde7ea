"""What a run saves beside its weights: the checkpoint's schema (what `predict` needs, and where the
model came from), library versions, and the random-number state that makes a resume exact."""

from __future__ import annotations

import platform
import random
from dataclasses import asdict

import numpy as np
import torch
import torchvision

from gliomask import __version__
from gliomask.config import Config
from gliomask.data.dataset import available_modalities
from gliomask.data.prepared import Prepared
from gliomask.inference.core import PostProcessing
from gliomask.labels import CLASS_SCHEMES
from gliomask.models.factory import detector_scheme


def versions() -> dict:
    return {"gliomask": __version__, "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "numpy": str(np.__version__), "python": platform.python_version(),
            "cuda": str(torch.version.cuda) if torch.cuda.is_available() else None}


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(("MT19937", state["numpy"]["keys"].numpy().astype(np.uint32), state["numpy"]["pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        # a run saved with more GPUs visible (4 per rank) resumed with fewer (1): restore the ones there are
        for index, cuda_state in enumerate(list(state["cuda"])[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def restore_scaler(scaler, state: dict | None) -> None:
    """Load a GradScaler's saved state; a run saved without AMP (on a CPU, or ``train.amp=false``) saved an
    empty one, and a resumed run that now uses AMP starts a fresh scale instead of failing."""
    if state:
        scaler.load_state_dict(state)


def checkpoint_payload(model, cfg: Config, prepared: Prepared, *, post: PostProcessing, fold, train_ids, val_ids,
                       extra=None) -> dict:
    """What `predict` needs to rebuild the model and preprocess a case exactly as in training, the
    post-processing chosen on validation (kept apart from the config), and where the model came from:
    the prepared data's fingerprint, the fold and the training and validation patients."""
    settings = prepared.settings
    scheme = detector_scheme(cfg, settings["scheme"])
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": cfg.to_dict(),
        "classes": [name for name, _ in CLASS_SCHEMES[scheme]],
        "modalities": list(settings["modalities"]),
        "scheme": scheme,
        "context": int(cfg.model.context),
        "planes": list(cfg.model.planes) or [settings["axis"]],
        "postprocessing": {**asdict(post), "region_thresholds": list(post.region_thresholds),
                           "score_thresholds": list(post.score_thresholds) if post.score_thresholds else None},
        "label_convention": prepared.meta["label_convention"],
        "normalization": {"method": "brain_percentile_zscore", "clip_percentiles": list(settings["clip_percentiles"]),
                          "crop_margin": int(settings["crop_margin"])},
        "axis": settings["axis"],
        "geometry": prepared.geometry,  # voxel orientation and spacing trained on: predict maps inputs there
        "modality_correlations": prepared.modality_correlations,  # how the modalities vary together: predict flags swaps
        "enhancement_share": prepared.enhancement_share,  # T1ce's contrast uptake: predict flags a T1 given as T1ce
        # the modality sets whole training cases had (not the subsets modality dropout made): predict draws the
        # whole tumour from a FLAIR + T1ce pass only when some training patients came with just those
        "trained_modality_sets": [list(t) for t in sorted({tuple(available_modalities(
            prepared.case_meta(c), list(settings["modalities"]))) for c in train_ids})],
        "provenance": {"prepared_fingerprint": prepared.meta.get("fingerprint"), "fold": fold,
                       "train_cases": list(train_ids), "val_cases": list(val_ids)},
        "versions": versions(),
    }
    payload.update(extra or {})
    return payload
