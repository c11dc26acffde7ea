"""Exponential moving average of the weights (buffers included), the model that validation, the
post-processing search and the checkpoint use.

With three training patients the weights of the last steps swing from one batch to the next and the
validation Dice with them; the average of the recent weights is steadier and generalises better
(Polyak averaging; timm's ModelEmaV3, torchvision's classification reference). The decay warms up as
timm's does, min(decay, (1 + n) / (10 + n)), so that a short, time-boxed run is not dominated by its
first, untrained weights.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def _ema_with_warmup(decay: float):
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - d)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():  # e.g. BatchNorm's num_batches_tracked
                a.copy_(c)

    return update


def weight_ema(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An ``AveragedModel`` of ``model`` (parameters and buffers) with warm-up decay; None when decay is 0.
    Call ``.update_parameters(model)`` after each optimiser step; ``.module`` is the averaged network."""
    if not decay:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"train.ema_decay must be 0 (off) or between 0 and 1, got {decay}")
    return AveragedModel(model, multi_avg_fn=_ema_with_warmup(decay), use_buffers=True)
