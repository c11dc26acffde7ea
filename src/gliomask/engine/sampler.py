"""Per-epoch slice sampling: every tumour slice plus a share of tumour-free ones, sharded over ranks."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


def augmentation_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of one sample's augmentation: a function of the run's seed, the epoch and the sample's
    place in the epoch's global order, never of a process's RNG, so a resumed run (whose DataLoader
    workers start afresh) draws the same augmentations as an uninterrupted one, on any number of ranks."""
    return ((seed * 1_000_003 + epoch) * 998_244_353 + position) % (2 ** 63)


class TumourBalancedSampler(Sampler[tuple[int, int]]):
    """Each epoch: all positive slices and enough randomly drawn negatives to make up
    ``negative_share`` of the epoch, shuffled with ``seed + epoch`` and split across ranks like
    ``DistributedSampler`` (padded by repeating the order, so that every rank gets the same number).

    Yields ``(slice index, augmentation seed)``; :class:`PreparedSlices` accepts both forms.
    """

    def __init__(self, is_negative: list[bool], *, negative_share: float, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.pos = [i for i, n in enumerate(is_negative) if not n]
        self.neg = [i for i, n in enumerate(is_negative) if n]
        share = min(max(negative_share, 0.0), 0.95)
        wanted = int(round(len(self.pos) * share / (1 - share))) if self.pos else len(self.neg)
        self.n_neg = min(len(self.neg), wanted)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.skip = 0
        self.per_rank = math.ceil((len(self.pos) + self.n_neg) / world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """``skip``: samples of this rank's share already used (a run resumed mid-epoch starts after them)."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        neg = torch.tensor(self.neg, dtype=torch.long)[torch.randperm(len(self.neg), generator=g)[: self.n_neg]]
        order = torch.cat([torch.tensor(self.pos, dtype=torch.long), neg])
        order = order[torch.randperm(len(order), generator=g)].tolist()
        total = self.per_rank * self.world_size
        if len(order) < total:  # as DistributedSampler: repeat the order as often as needed
            order = (order * math.ceil(total / max(len(order), 1)))[:total]
        positions = range(self.rank, total, self.world_size)[self.skip:]
        return iter([(order[p], augmentation_seed(self.seed, self.epoch, p)) for p in positions])

    def __len__(self) -> int:
        return max(self.per_rank - self.skip, 0)
