"""Training augmentation on tensors, applied to image, masks and boxes together."""

from __future__ import annotations

import torch
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


class SliceAugment:
    """Flips, a small rotation and scale, then per-channel intensity scale, shift and gamma and Gaussian
    noise inside the brain. Boxes are recomputed from the transformed masks and instances that left the
    slice are dropped.

    image FloatTensor[C, H, W]; target ``boxes`` FloatTensor[N, 4] xyxy, ``labels`` Int64Tensor[N],
    ``masks`` UInt8Tensor[N, H, W], optional ``regions`` UInt8Tensor[3, H, W].

    The geometry is torchvision's (``v2.RandomAffine``'s draws and ``v2.functional.affine``, nearest
    neighbour, zeros outside), applied once to image, masks and regions stacked together: one sampling
    grid and one ``grid_sample`` per slice instead of one per kind of input, which is what lets a single
    loader worker feed a GPU (bench/loader.py).
    """

    # Ranges towards nnU-Net's (rotation, scale 0.7-1.4, gamma 0.7-1.5): with three training patients
    # the mild ones (10 degrees, 0.9-1.1, gamma 0.8-1.25) let the tumour-core Dice drift down late in a run.
    def __init__(self, *, degrees: float = 30.0, scale=(0.8, 1.25), intensity: float = 0.15,
                 gamma=(0.7, 1.5), noise: float = 0.05):
        self.degrees, self.scale = float(degrees), tuple(scale)
        self.intensity, self.gamma, self.noise = intensity, gamma, noise

    def __call__(self, image: torch.Tensor, target: dict):
        c, n = image.shape[0], len(target["masks"])
        parts = [image, target["masks"].to(image.dtype)]
        if "regions" in target:
            parts.append(target["regions"].to(image.dtype))
        stack = torch.cat(parts)  # [C + N (+ 3), H, W]: every input gets the same flips, rotation and scale
        if float(torch.rand(())) < 0.5:
            stack = stack.flip(-1)
        if float(torch.rand(())) < 0.5:
            stack = stack.flip(-2)
        angle = float(torch.empty(()).uniform_(-self.degrees, self.degrees))
        scale = float(torch.empty(()).uniform_(*self.scale))
        stack = F.affine(stack, angle=angle, translate=[0.0, 0.0], scale=scale, shear=[0.0, 0.0],
                         interpolation=v2.InterpolationMode.NEAREST)
        image = self._intensity(stack[:c])
        masks = stack[c:c + n].to(torch.uint8)
        keep = masks.flatten(1).any(dim=1).bool()
        masks = masks[keep]
        target = dict(target, masks=masks, labels=target["labels"][keep])
        if "regions" in target:
            target["regions"] = stack[c + n:].to(torch.uint8)
        boxes = masks_to_boxes(masks) if len(masks) else torch.zeros((0, 4))
        boxes[:, 2:] += 1  # exclusive max, as in slice_instances
        target["boxes"] = boxes.float()
        return image, target

    def _intensity(self, image: torch.Tensor) -> torch.Tensor:
        """In place where it can be: ``image`` is the augmentation's own copy."""
        brain = image.abs().sum(0, keepdim=True) > 0
        c = image.shape[0]
        scale = 1 + self.intensity * torch.randn(c, 1, 1)
        shift = self.intensity * torch.randn(c, 1, 1)
        gamma = torch.empty(c, 1, 1).uniform_(*self.gamma)
        lo = image.amin(dim=(1, 2), keepdim=True)
        hi = image.amax(dim=(1, 2), keepdim=True)
        span = (hi - lo).clamp_min(1e-6)
        image = image.sub(lo).div_(span).clamp_(0, 1).pow_(gamma).mul_(span).add_(lo)  # gamma on [0, 1], mapped back
        image.mul_(scale).add_(shift).add_(_gaussian_noise(image.numel()).view_as(image), alpha=self.noise)
        return image.mul_(brain)


_NOISE_BANK: torch.Tensor | None = None


def _gaussian_noise(n: int) -> torch.Tensor:
    """``n`` standard normal values: a window at a random offset (drawn from the caller's generator) of a
    bank of at least 4M values made once per process from a fixed seed. Within a slice the values are
    independent N(0, 1); slices share windows of one bank, which no network can exploit. Drawing ``n``
    fresh values was 1.2 ms of a 7 ms slice in a loader worker (bench/loader.py)."""
    global _NOISE_BANK
    size = max(1 << 22, 2 * n)
    if _NOISE_BANK is None or len(_NOISE_BANK) < size:
        _NOISE_BANK = torch.randn(size, generator=torch.Generator().manual_seed(20261130))
    start = int(torch.randint(len(_NOISE_BANK) - n + 1, ()))
    return _NOISE_BANK[start:start + n]
