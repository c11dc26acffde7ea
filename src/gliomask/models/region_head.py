"""A dense region head beside the detector: the semantic branch of Panoptic FPN (Kirillov et al. 2019).

FPN levels are each brought to the finest level's stride by conv + 2x upsampling stages and summed,
as in Panoptic FPN. When the backbone's finest FPN level is stride 8 (MobileNet), raw stride-4
features join at stride 4. Thin enhancing rims (2-5 px) are finer than stride 4, so the merged map
is upsampled to the slice and refined once together with the input image itself. Three sigmoid
channels WT, TC, ET are trained region-wise (BCE + soft Dice), as nnU-Net trains BraTS.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

REGION_CHANNELS = 3  # WT, TC, ET


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _ScaleBranch(nn.Sequential):
    """conv (+ 2x upsample) repeated until a level reaches stride 4."""

    def __init__(self, cin: int, cout: int, upsamplings: int):
        layers: list[nn.Module] = []
        for i in range(max(upsamplings, 1)):
            layers.append(_conv_bn_relu(cin if i == 0 else cout, cout))
            if upsamplings:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        super().__init__(*layers)


class RegionHead(nn.Module):
    """Dense WT/TC/ET logits from FPN features and the input slice.

    Args:
        in_channels: FPN channels.
        image_channels: channels of the network input (modalities x context slices).
        levels: how many FPN levels, from the finest, are merged.
        fine_channels: channels of raw stride-4 backbone features given as ``fine`` (0: none).
    ``forward(features, images)``: ``features`` the backbone's OrderedDict whose first ``levels``
    entries have strides 4, 8, 16, ...; ``images`` FloatTensor [B, C, H, W] (the padded batch).
    Returns logits FloatTensor [B, 3, H, W].
    """

    def __init__(self, in_channels: int, image_channels: int, *, channels: int = 64, refine_channels: int = 16,
                 levels: int = 3, fine_channels: int = 0):
        super().__init__()
        self.levels = levels
        self.branches = nn.ModuleList(_ScaleBranch(in_channels, channels, i) for i in range(levels))
        self.fine = _conv_bn_relu(channels + fine_channels, channels) if fine_channels else None
        # Few channels cross to full resolution: the full-size convolution dominates the head's CPU time.
        self.squeeze = nn.Conv2d(channels, refine_channels // 2, 1)
        self.refine = _conv_bn_relu(refine_channels // 2 + image_channels, refine_channels)
        self.logits = nn.Conv2d(refine_channels, REGION_CHANNELS, 1)

    def forward(self, features: "OrderedDict[str, torch.Tensor]", images: torch.Tensor,
                fine: torch.Tensor | None = None) -> torch.Tensor:
        maps = list(features.values())[: self.levels]
        merged = None
        for branch, fmap in zip(self.branches, maps):
            out = branch(fmap)
            if merged is not None and out.shape[-2:] != merged.shape[-2:]:
                out = F.interpolate(out, size=merged.shape[-2:], mode="bilinear", align_corners=False)
            merged = out if merged is None else merged + out
        if self.fine is not None and fine is not None:
            up = F.interpolate(merged, size=fine.shape[-2:], mode="bilinear", align_corners=False)
            merged = self.fine(torch.cat([up, fine], dim=1))
        full = F.interpolate(self.squeeze(merged), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return self.logits(self.refine(torch.cat([full, images], dim=1)))


def region_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> dict[str, torch.Tensor]:
    """BCE + soft Dice per region channel, Dice pooled over the batch (negative slices stay defined).

    logits FloatTensor [B, 3, H, W]; target {0, 1} tensor of the same shape.
    """
    target = target.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    prob = torch.sigmoid(logits.float())
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    return {"loss_region_bce": bce, "loss_region_dice": 1 - dice.mean()}


def pad_regions(targets: list[dict], size: tuple[int, int]) -> torch.Tensor:
    """Stack each target's ``regions`` UInt8 [3, h, w] into [B, 3, H, W], zero-padded like the images."""
    out = []
    for t in targets:
        r = t["regions"]
        out.append(F.pad(r, (0, size[1] - r.shape[-1], 0, size[0] - r.shape[-2])))
    return torch.stack(out)
