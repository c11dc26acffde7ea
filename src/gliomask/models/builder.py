"""torchvision Mask R-CNN sized for brain tumours in 1 mm MRI slices with N input channels."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.models import resnet18, resnet34, resnet50

from gliomask.errors import GliomaskError
from gliomask.models.region_head import RegionHead, pad_regions, region_loss

BACKBONES = ("resnet50_fpn", "resnet34_fpn", "resnet18_fpn", "mobilenet_v3_fpn")
_RESNETS = {"resnet18_fpn": resnet18, "resnet34_fpn": resnet34, "resnet50_fpn": resnet50}
ASPECT_RATIOS = (0.5, 1.0, 2.0)


class TieBreakingMatcher(Matcher):
    """torchvision's proposal matcher, with ties between ground-truth boxes broken at random.

    Nested regions often share a box exactly: an enhancing rim (ET) has the same box as the core (TC)
    it surrounds. torchvision's argmax always picks the first of equal-IoU boxes, so the other class
    would never get a positive proposal and never learn. A tiny random jitter of the IoUs (training
    only) gives each class its share of positives; it changes no match between unequal IoUs.
    """

    def __call__(self, match_quality_matrix: torch.Tensor) -> torch.Tensor:
        if match_quality_matrix.numel():
            jitter = torch.rand_like(match_quality_matrix) * 1e-5
            match_quality_matrix = match_quality_matrix + jitter * (match_quality_matrix > 0)
        return super().__call__(match_quality_matrix)


class NativeSizeTransform(GeneralizedRCNNTransform):
    """Normalise and batch, but never resize: slices keep their native 1 mm grid.

    torchvision would upscale a 240 px slice to 800 px, which costs seconds per slice on a CPU and
    adds nothing at 1 mm. Boxes and masks therefore come back in input pixel coordinates.
    """

    def resize(self, image, target=None):
        return image, target


class GliomaskRCNN(MaskRCNN):
    """Mask R-CNN whose FPN features also feed a dense WT/TC/ET ``RegionHead`` (Panoptic FPN style).

    Training targets may carry ``regions`` UInt8Tensor[3, H, W] (WT, TC, ET); the losses then add
    ``loss_region_bce`` and ``loss_region_dice``. In eval each output dict adds ``regions``
    FloatTensor[3, H, W], the sigmoid region probabilities on the input slice.
    """

    def __init__(self, backbone, *args, region_head: RegionHead | None = None, **kwargs):
        super().__init__(backbone, *args, **kwargs)
        self.region_head = region_head

    def forward(self, images, targets=None):
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        batch, targets = self.transform(images, targets)
        features = self.backbone(batch.tensors)
        proposals, proposal_losses = self.rpn(batch, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        logits = None
        if self.region_head is not None:
            logits = self.region_head(features, batch.tensors, fine=getattr(self.backbone, "fine", None))
        if getattr(self.backbone, "fine", None) is not None:
            self.backbone.fine = None  # do not keep this batch's features (and their graph) alive
        if self.training:
            losses = {**detector_losses, **proposal_losses}
            if logits is not None and all("regions" in t for t in targets):
                losses.update(region_loss(logits, pad_regions(targets, logits.shape[-2:])))
            return losses
        detections = self.transform.postprocess(detections, batch.image_sizes, original_sizes)
        if logits is not None:
            for i, (h, w) in enumerate(batch.image_sizes):
                detections[i]["regions"] = torch.sigmoid(logits[i, :, :h, :w].float())
        return detections


class MobileNetFPN(nn.Module):
    """MobileNetV3-Large with FPN levels at strides 8, 16, 32 (+ the pooled 64), 128 channels.

    torchvision's ``_mobilenet_extractor(returned_layers=[3, 4, 5])`` gives strides 16, 32, 32: no
    high-resolution map for small lesions and thin rims. Each stage's last block is taken here. A
    stride-4 FPN level would cost more than the rest of the network on a CPU, so the raw stride-4
    features (24 channels) are kept aside in ``self.fine`` for the dense region head only.
    """

    def __init__(self, net, out_channels: int = 128):
        super().__init__()
        # features[3], [6], [12], [16] end the stride-4, 8, 16 and 32 stages.
        self.body = IntermediateLayerGetter(net.features, {"3": "fine", "6": "0", "12": "1", "16": "2"})
        in_channels = [net.features[i].out_channels for i in (6, 12, 16)]
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels
        self.fine_channels = net.features[3].out_channels
        self.fine: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.body(x)
        self.fine = feats.pop("fine")
        return self.fpn(feats)


def _norm_layer(norm: str):
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "frozen":  # only sensible with loaded weights: an identity at random init
        return FrozenBatchNorm2d
    raise GliomaskError(f"unknown norm {norm!r}; choose batch or frozen")


def _replace_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None)


def build_maskrcnn(
    *,
    num_classes: int,
    in_channels: int,
    backbone: str = "mobilenet_v3_fpn",
    version: str = "v1",
    norm: str = "batch",
    box_head_dim: int = 256,
    mask_head_layers: int = 2,
    rpn_pre_nms_top_n_train: int = 300,
    rpn_post_nms_top_n_train: int = 150,
    rpn_pre_nms_top_n_test: int = 300,
    rpn_post_nms_top_n_test: int = 30,
    box_batch_size_per_image: int = 32,
    box_detections_per_img: int = 10,
    box_score_thresh: float = 0.05,
    region_head: bool = True,
    region_channels: int = 64,
) -> MaskRCNN:
    """Build a torchvision Mask R-CNN for ``in_channels``-channel slices.

    Args:
        num_classes: foreground classes (background is added).
        in_channels: MRI modalities stacked as channels.
        backbone: one of ``BACKBONES``. ``mobilenet_v3_fpn`` is the light CPU default.
        version: ``"v1"`` (Mask R-CNN) or ``"v2"`` (Li et al. 2021 heads: conv box head, normalised
            mask head, 2-conv RPN), ResNet backbones only.
        norm: ``"batch"`` (train from scratch) or ``"frozen"`` (with loaded weights).
        region_head: add the dense WT/TC/ET head beside the detector (``GliomaskRCNN``).
    Inputs are already z-scored per modality, so ``image_mean`` is 0 and ``image_std`` 1, and slices
    are not resized. Anchors span 8 to 128 px (8 mm to 12.8 cm at 1 mm).

    The model takes ``list[FloatTensor[C, H, W]]`` and, in training, targets with
    ``boxes FloatTensor[N, 4] xyxy``, ``labels Int64Tensor[N]``, ``masks UInt8Tensor[N, H, W]``; in eval
    it returns per image ``boxes``, ``labels``, ``scores FloatTensor[N]`` and ``masks FloatTensor[N, 1, H, W]``.
    """
    norm_layer = _norm_layer(norm)
    if backbone in _RESNETS:
        net = _RESNETS[backbone](weights=None, norm_layer=norm_layer)
        net.conv1 = _replace_first_conv(net.conv1, in_channels)
        body = _resnet_fpn_extractor(net, 5, norm_layer=nn.BatchNorm2d if version == "v2" else None)
        sizes = ((8,), (16,), (32,), (64,), (128,))
    elif backbone == "mobilenet_v3_fpn":
        if version != "v1":
            raise GliomaskError("version v2 needs a ResNet backbone")
        net = mobilenet_v3_large(weights=None, norm_layer=norm_layer)
        first = net.features[0][0]
        net.features[0][0] = _replace_first_conv(first, in_channels)
        body = MobileNetFPN(net)
        sizes = ((8, 16), (24, 32), (48, 64), (96, 128))  # strides 8, 16, 32, 64
    else:
        raise GliomaskError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if version not in ("v1", "v2"):
        raise GliomaskError(f"unknown version {version!r}; choose v1 or v2")

    anchors = AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(sizes))
    channels = body.out_channels
    if version == "v2":
        rpn_head = RPNHead(channels, anchors.num_anchors_per_location()[0], conv_depth=2)
        box_head = FastRCNNConvFCHead((channels, 7, 7), [256] * 4, [box_head_dim], norm_layer=nn.BatchNorm2d)
        mask_head = MaskRCNNHeads(channels, [256] * mask_head_layers, 1, norm_layer=nn.BatchNorm2d)
    else:
        rpn_head = RPNHead(channels, anchors.num_anchors_per_location()[0])
        box_head = TwoMLPHead(channels * 7 * 7, box_head_dim)
        mask_head = MaskRCNNHeads(channels, [256] * mask_head_layers, 1)
    model = GliomaskRCNN(
        body,
        region_head=RegionHead(channels, in_channels, channels=region_channels,
                               fine_channels=getattr(body, "fine_channels", 0)) if region_head else None,
        num_classes=num_classes + 1,
        rpn_anchor_generator=anchors,
        rpn_head=rpn_head,
        box_head=box_head,
        box_predictor=None,
        mask_head=mask_head,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img,
        box_score_thresh=box_score_thresh,
    )
    # Box predictor sized to the head's output; the MaskRCNN default assumes 1024.
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    model.roi_heads.box_predictor = FastRCNNPredictor(box_head_dim, num_classes + 1)
    old = model.roi_heads.proposal_matcher
    model.roi_heads.proposal_matcher = TieBreakingMatcher(old.high_threshold, old.low_threshold,
                                                          allow_low_quality_matches=old.allow_low_quality_matches)
    model.transform = NativeSizeTransform(
        min_size=240, max_size=240, image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels
    )
    model.in_channels = in_channels
    return model
