"""Load pretrained weights from a local file into a gliomask Mask R-CNN.

Accepted files: a torchvision COCO Mask R-CNN state dict (``maskrcnn_resnet50_fpn_coco-*.pth``), an
ImageNet backbone state dict (``resnet50-*.pth``, ``mobilenet_v3_large-*.pth``), or a gliomask
checkpoint. All are read with ``torch.load(weights_only=True)``: a weight file never runs code.

The first convolution is inflated from 3 (RGB) to N input channels as

    W'[:, c] = (3 / N) * mean(W[:, 0:3])    for every input channel c,

i.e. each new channel gets the mean RGB kernel, rescaled so that an input whose N channels are equal
produces the same response as the RGB network did on a grey image. Heads whose class count differs
are left at their fresh initialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gliomask.errors import GliomaskError
from gliomask.models.checkpoint import safe_load

FIRST_CONVS = ("backbone.body.conv1.weight", "backbone.body.0.0.weight")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the file, shape does not fit (re-initialised)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model

    def summary(self) -> str:
        groups: dict[str, int] = {}
        for key in self.loaded:  # which parts of the network came from the file
            part = ".".join(key.split(".")[:2])
            groups[part] = groups.get(part, 0) + 1
        parts = [f"loaded {len(self.loaded)} tensors ({', '.join(f'{k} {n}' for k, n in groups.items())})"]
        if self.inflated:
            parts.append(f"inflated {', '.join(self.inflated)}")
        if self.skipped:
            parts.append(f"re-initialised (shape differs) {', '.join(self.skipped)}")
        if self.missing:
            parts.append(f"{len(self.missing)} model tensors not in the file")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} file tensors unused")
        return "; ".join(parts)


def inflate_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """FloatTensor[O, 3, k, k] -> FloatTensor[O, N, k, k] by the formula in the module docstring."""
    mean = weight[:, :3].mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (3.0 / in_channels)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise GliomaskError("weight file not found", path)
    obj = safe_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GliomaskError("not a state dict of tensors", path)
    return obj


def _to_model_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Map ImageNet backbone keys (``conv1.weight``, ``features.0.0.weight``) onto the detector's."""
    if any(k.startswith("backbone.") for k in state):
        return state
    mapped = {}
    for key, value in state.items():
        if key.startswith(("fc.", "classifier.")):
            continue
        name = key[len("features."):] if key.startswith("features.") else key
        mapped[f"backbone.body.{name}"] = value
    return mapped


# torchvision renamed these when FPN and RPN heads became Conv2dNormActivation blocks (its
# _load_from_state_dict upgrades them on load; a key-by-key copy must do it itself): files saved
# before, such as maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth, hold the old names.
LEGACY_KEYS = (
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(rpn\.head\.conv)\.(weight|bias)$"), r"\1.0.0.\2"),
)


def _upgrade_legacy_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Old FPN / RPN key names -> the current ones, where the model has the current one."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in LEGACY_KEYS:
            new = pattern.sub(replacement, key)
            if new != key and new in model_keys and key not in model_keys:
                key = new
                break
        out[key] = value
    return out


def load_weights(model: nn.Module, source: str | Path, version: str = "v1") -> LoadReport:
    """Load ``source`` into ``model`` where names and shapes fit; returns what happened. ``coco`` takes
    torchvision's COCO weights of the heads' ``version`` (v1: Mask R-CNN, v2: Li et al. 2021)."""
    if str(source) == "coco":
        state = _download_coco(version)
    else:
        state = read_state_dict(source)
    own = model.state_dict()
    state = _upgrade_legacy_keys(_to_model_keys(state, set(own)), set(own))
    report = LoadReport()
    new_state = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        target = own[key]
        if key in FIRST_CONVS and value.ndim == 4 and value.shape[1] == 3 and target.shape[1] != 3 \
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            value = inflate_conv_weight(value, target.shape[1])
            report.inflated.append(key)
        if value.shape != target.shape:
            report.skipped.append(key)
            continue
        new_state[key] = value.to(target.dtype)
        report.loaded.append(key)
    report.missing = sorted(k for k in own if k not in new_state and k not in report.skipped
                            and not k.endswith("num_batches_tracked"))
    if not report.loaded:
        raise GliomaskError("no tensor in the file matches this model's architecture", source)
    model.load_state_dict(new_state, strict=False)
    return report


def _download_coco(version: str = "v1") -> dict[str, torch.Tensor]:
    """torchvision's COCO Mask R-CNN ResNet-50 FPN weights whose heads match ``version``; needs a network."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights

    weights = MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1 if version == "v2" else MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    try:
        return weights.get_state_dict(progress=True)
    except Exception as exc:
        raise GliomaskError(
            f"cannot download COCO weights ({type(exc).__name__}); offline, download "
            f"{Path(weights.url).name} elsewhere and pass model.weights=PATH"
        ) from None
