"""SliceAugment: image, instance masks, regions and boxes move together; a seed gives one result."""

from __future__ import annotations

import numpy as np
import torch

from gliomask.data.instances import slice_instances
from gliomask.data.transforms import SliceAugment
from gliomask.labels import regions_from_labels


def _slice():
    """A 2-channel 96 x 80 slice: a brain disc (0.3) with two lesions; channel 0 is 1 on the lesions."""
    seg = np.zeros((96, 80), np.uint8)
    yy, xx = np.mgrid[:96, :80]
    seg[(yy - 30) ** 2 + (xx - 25) ** 2 < 100] = 2  # oedema lesion
    seg[(yy - 60) ** 2 + (xx - 55) ** 2 < 64] = 4  # enhancing lesion
    brain = ((yy - 48) ** 2 / 44 ** 2 + (xx - 40) ** 2 / 37 ** 2) < 1
    image = np.stack([np.where(seg > 0, 1.0, 0.3 * brain), 0.3 * brain]).astype(np.float32)
    masks, labels, boxes = slice_instances(seg, "whole")
    target = {"masks": torch.from_numpy(masks), "labels": torch.from_numpy(labels), "boxes": torch.from_numpy(boxes),
              "regions": torch.from_numpy(regions_from_labels(seg).astype(np.uint8)), "image_id": 1}
    return torch.from_numpy(image), target


def test_geometry_moves_image_masks_regions_and_boxes_together():
    geometric_only = SliceAugment(intensity=0.0, gamma=(1.0, 1.0), noise=0.0)
    moved = 0
    for seed in range(12):
        image, target = _slice()
        torch.manual_seed(seed)
        out, t = geometric_only(image.clone(), target)
        lesion = out[0] > 0.65  # the lesion channel, nearest-neighbour: exactly 1 on lesions, 0.3 or 0 elsewhere
        assert out.shape == image.shape and t["masks"].dtype == torch.uint8 and t["regions"].dtype == torch.uint8
        assert torch.equal(t["masks"].bool().any(0), lesion)
        assert torch.equal(t["regions"][0].bool(), lesion)
        assert len(t["labels"]) == len(t["masks"]) == len(t["boxes"])
        for mask, box in zip(t["masks"], t["boxes"]):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        moved += not torch.equal(t["masks"].bool().any(0), target["masks"].bool().any(0))
    assert moved >= 10  # the geometry does change the slice


def test_intensity_stays_inside_the_brain_and_a_seed_repeats():
    augment = SliceAugment()
    image, target = _slice()
    torch.manual_seed(3)
    a, ta = augment(image.clone(), target)
    torch.manual_seed(3)
    b, tb = augment(image.clone(), target)
    assert torch.equal(a, b) and torch.equal(ta["masks"], tb["masks"])
    torch.manual_seed(4)
    c, _ = augment(image.clone(), target)
    assert not torch.equal(a, c)
    torch.manual_seed(3)  # the same geometry (drawn first), intensities untouched: where the brain went
    g, _ = SliceAugment(intensity=0.0, gamma=(1.0, 1.0), noise=0.0)(image.clone(), target)
    brain = g[1] > 0
    assert brain.any() and (~brain).any()
    assert (a[:, ~brain] == 0).all()  # the background stays 0: no noise or shift outside the brain
    assert (a[:, brain] != 0).float().mean() > 0.99
    assert not torch.allclose(a[1][brain], g[1][brain], atol=0.01)  # the brain's intensities did change


def test_half_precision_slices_of_a_read_only_volume_widen_without_a_warning(tmp_path):
    """Prepared volumes are float16 memmaps opened read-only; a context-0 slice is a read-only view, which
    torch.from_numpy warns about (and may not write through). The loader widens it from its own copy."""
    import warnings

    from gliomask.data.dataset import _float32

    path = tmp_path / "volume.npy"
    source = np.random.default_rng(0).normal(size=(3, 2, 8, 6)).astype(np.float16)
    np.save(path, source)
    volume = np.load(path, mmap_mode="r")
    assert not volume[1].flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        widened = _float32(volume[1])
    assert widened.dtype == np.float32 and np.array_equal(widened, source[1].astype(np.float32))
    assert np.array_equal(np.load(path), source)  # the prepared file is untouched
