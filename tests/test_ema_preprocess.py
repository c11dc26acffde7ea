"""Weight averaging (EMA) and the one preprocessing path with its inverse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gliomask.data.preprocess import preprocess
from gliomask.engine.ema import weight_ema
from gliomask.errors import GliomaskError


def test_ema_follows_the_warm_up_decay_and_copies_integer_buffers():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = weight_ema(net, 0.99)
    ema.update_parameters(net)  # first call copies
    before = net[0].weight.detach().clone()
    assert torch.equal(ema.module[0].weight, before)
    with torch.no_grad():
        net[0].weight += 1.0
    net.train()
    net(torch.randn(4, 3))  # moves BatchNorm statistics and its integer counter
    ema.update_parameters(net)
    d = min(0.99, (1 + 1) / (10 + 1))  # n_averaged = 1 at the second update
    torch.testing.assert_close(ema.module[0].weight, d * before + (1 - d) * net[0].weight.detach())
    assert ema.module[1].num_batches_tracked.item() == net[1].num_batches_tracked.item() == 1
    assert not torch.equal(ema.module[1].running_mean, torch.zeros(2))


def test_ema_off_and_bad_decay():
    net = torch.nn.Linear(2, 2)
    assert weight_ema(net, 0.0) is None
    with pytest.raises(ValueError):
        weight_ema(net, 1.5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_preprocess_restore_is_the_inverse_of_slicing(axis):
    rng = np.random.default_rng(axis)
    images = np.zeros((2, 20, 24, 18), np.float32)
    images[:, 4:15, 6:20, 3:12] = rng.uniform(1, 100, (2, 11, 14, 9))
    labels = np.zeros(images.shape[1:], np.uint8)
    labels[6:10, 8:12, 5:9] = 2
    pre = preprocess(images, axis=axis, clip_percentiles=(0.5, 99.5), crop_margin=2)
    assert pre.volume.shape[1] == 2 and pre.volume.shape[0] == pre.brain.shape[0]
    assert pre.volume.shape[0] == pre.crop[axis][1] - pre.crop[axis][0]
    sliced = pre.to_slices(labels)
    assert sliced.shape == pre.brain.shape
    np.testing.assert_array_equal(pre.restore(sliced), labels)
    stacked = pre.restore(np.stack([sliced, sliced]))  # leading channels are kept
    assert stacked.shape == (2, *labels.shape)
    # normalised inside the brain, zero outside it
    assert np.all(pre.volume.transpose(1, 0, 2, 3)[:, ~pre.brain] == 0)


def test_preprocess_refuses_an_empty_image():
    with pytest.raises(GliomaskError, match="empty"):
        preprocess(np.zeros((1, 5, 5, 5), np.float32), axis=2, clip_percentiles=(0.5, 99.5), crop_margin=1, source="x.nii.gz")
