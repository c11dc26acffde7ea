"""The model from settings, and from a checkpoint: the one place a network is constructed.

Training (`gliomask.engine`) and prediction (`gliomask.inference`) both build through here, so a
checkpoint always rebuilds the network it was trained as.
"""

from __future__ import annotations

import os

import torch

from gliomask.config import Config, load_config
from gliomask.errors import GliomaskError
from gliomask.labels import CLASS_SCHEMES
from gliomask.models.builder import build_maskrcnn
from gliomask.utils import local_cuda_index


DEVICE_ENV = "GLIOMASK_DEVICE"  # what ``auto`` means when set (the test suite pins it to cpu)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``$GLIOMASK_DEVICE`` when set, else CUDA when available, else CPU; an explicit CUDA
    device must exist.

    Under torchrun (``LOCAL_RANK`` set), ``auto`` and ``cuda`` mean this process's own GPU
    (`gliomask.utils.local_cuda_index`), so that the ranks of a node do not all share the first one.
    """
    if name == "auto":
        name = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GliomaskError(f"device {name} asked for, but CUDA is not available")
    if name == "cuda" and os.environ.get("LOCAL_RANK", "").isdigit():
        name = f"cuda:{local_cuda_index()}"
    try:
        return torch.device(name)
    except RuntimeError:
        raise GliomaskError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N") from None


def detector_scheme(cfg: Config, prepared_scheme: str) -> str:
    """The detector's class scheme: whole-tumour lesions as objects, or the prepared classes."""
    if cfg.model.detector == "lesions":
        return "whole"
    if cfg.model.detector == "scheme":
        return prepared_scheme
    raise GliomaskError(f"unknown model.detector {cfg.model.detector!r}; choose lesions or scheme")


def input_channels(modalities: int, context: int, flags: bool) -> int:
    """The network's input channels: ``modalities`` x (2 * ``context`` + 1) slices, plus one flag channel
    per modality with ``flags`` (model.modality_flags, `gliomask.data.dataset.with_modality_flags`)."""
    return modalities * (2 * context + 1) + (modalities if flags else 0)


def model_from_config(cfg: Config, num_classes: int, in_channels: int):
    """An untrained network for ``cfg.model``; ``in_channels`` from `input_channels`."""
    m = cfg.model
    return build_maskrcnn(
        num_classes=num_classes, in_channels=in_channels, backbone=m.backbone, version=m.version, norm=m.norm,
        box_head_dim=m.box_head_dim, mask_head_layers=m.mask_head_layers,
        rpn_pre_nms_top_n_train=m.rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=m.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=m.rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=m.rpn_post_nms_top_n_test,
        box_batch_size_per_image=m.box_batch_size_per_image, box_detections_per_img=m.box_detections_per_img,
        region_head=m.region_head, region_channels=m.region_channels,
    )


def model_from_checkpoint(checkpoint: dict, source: str = "checkpoint"):
    """(network with the checkpoint's weights, in eval mode on CPU, its resolved Config)."""
    context = int(checkpoint.get("context", 0))
    if checkpoint["scheme"] not in CLASS_SCHEMES:
        raise GliomaskError(f"unknown class scheme {checkpoint['scheme']!r}", source)
    try:  # a hand-edited config (an unknown backbone, a value out of range) names the checkpoint, not a setting alone
        cfg = load_config(base=checkpoint["config"])
        model = model_from_config(cfg, len(checkpoint["classes"]),
                                  input_channels(len(checkpoint["modalities"]), context, cfg.model.modality_flags))
    except GliomaskError as exc:
        raise GliomaskError(f"bad value in the checkpoint's config: {exc}", source) from None
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:
        raise GliomaskError(f"weights do not fit the checkpoint's own config ({str(exc).splitlines()[0]})", source) from None
    return model.eval(), cfg
