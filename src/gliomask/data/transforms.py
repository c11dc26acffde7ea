"""Training augmentation on tensors, applied to image, masks and boxes together."""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2


class SliceAugment:
    """Flips, a small rotation and scale (torchvision.transforms.v2 with tv_tensors), then per-channel
    intensity scale, shift and gamma and Gaussian noise inside the brain. Boxes are recomputed from the
    transformed masks and instances that left the slice are dropped.

    image FloatTensor[C, H, W]; target ``boxes`` FloatTensor[N, 4] xyxy, ``labels`` Int64Tensor[N],
    ``masks`` UInt8Tensor[N, H, W], optional ``regions`` UInt8Tensor[3, H, W].
    """

    # Ranges towards nnU-Net's (rotation, scale 0.7-1.4, gamma 0.7-1.5): with three training patients
    # the mild ones (10 degrees, 0.9-1.1, gamma 0.8-1.25) let the tumour-core Dice drift down late in a run.
    def __init__(self, *, degrees: float = 30.0, scale=(0.8, 1.25), intensity: float = 0.15,
                 gamma=(0.7, 1.5), noise: float = 0.05):
        self.geometric = v2.Compose([
            v2.RandomHorizontalFlip(0.5),
            v2.RandomVerticalFlip(0.5),
            v2.RandomAffine(degrees=degrees, scale=scale),
        ])
        self.intensity, self.gamma, self.noise = intensity, gamma, noise

    def __call__(self, image: torch.Tensor, target: dict):
        h, w = image.shape[-2:]
        masks = tv_tensors.Mask(target["masks"])
        boxes = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w))
        regions = tv_tensors.Mask(target["regions"]) if "regions" in target else None
        # One call: every input gets the same random flip, rotation and scale.
        image, masks, boxes, regions = self.geometric(tv_tensors.Image(image), masks, boxes, regions)
        image = self._intensity(image.as_subclass(torch.Tensor))
        masks = masks.as_subclass(torch.Tensor)
        keep = masks.flatten(1).bool().any(dim=1)
        masks = masks[keep]
        target = dict(target, masks=masks.to(torch.uint8), labels=target["labels"][keep])
        if regions is not None:
            target["regions"] = regions.as_subclass(torch.Tensor).to(torch.uint8)
        boxes = masks_to_boxes(masks) if len(masks) else torch.zeros((0, 4))
        boxes[:, 2:] += 1  # exclusive max, as in slice_instances
        target["boxes"] = boxes.float()
        return image, target

    def _intensity(self, image: torch.Tensor) -> torch.Tensor:
        brain = image.abs().sum(0, keepdim=True) > 0
        c = image.shape[0]
        scale = 1 + self.intensity * torch.randn(c, 1, 1)
        shift = self.intensity * torch.randn(c, 1, 1)
        gamma = torch.empty(c, 1, 1).uniform_(*self.gamma)
        lo = image.amin(dim=(1, 2), keepdim=True)
        hi = image.amax(dim=(1, 2), keepdim=True)
        span = (hi - lo).clamp_min(1e-6)
        image = ((image - lo) / span).clamp(0, 1) ** gamma * span + lo  # gamma on [0, 1], mapped back
        image = image * scale + shift + self.noise * torch.randn_like(image)
        return image * brain
