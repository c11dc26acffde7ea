"""Per-epoch slice sampling: every tumour slice plus a share of tumour-free ones, sharded over ranks."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


class TumourBalancedSampler(Sampler[int]):
    """Each epoch: all positive slices and enough randomly drawn negatives to make up
    ``negative_share`` of the epoch, shuffled with ``seed + epoch`` and split across ranks like
    ``DistributedSampler`` (padded so that every rank gets the same number of indices)."""

    def __init__(self, is_negative: list[bool], *, negative_share: float, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.pos = [i for i, n in enumerate(is_negative) if not n]
        self.neg = [i for i, n in enumerate(is_negative) if n]
        share = min(max(negative_share, 0.0), 0.95)
        wanted = int(round(len(self.pos) * share / (1 - share))) if self.pos else len(self.neg)
        self.n_neg = min(len(self.neg), wanted)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.per_rank = math.ceil((len(self.pos) + self.n_neg) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        neg = torch.tensor(self.neg, dtype=torch.long)[torch.randperm(len(self.neg), generator=g)[: self.n_neg]]
        order = torch.cat([torch.tensor(self.pos, dtype=torch.long), neg])
        order = order[torch.randperm(len(order), generator=g)].tolist()
        total = self.per_rank * self.world_size
        order += order[: total - len(order)]
        return iter(order[self.rank:total:self.world_size])

    def __len__(self) -> int:
        return self.per_rank
