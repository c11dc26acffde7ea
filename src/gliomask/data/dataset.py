"""A torch Dataset over the kept slices of a prepared folder."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from gliomask.data.instances import slice_instances
from gliomask.data.prepare import Prepared


class PreparedSlices(Dataset):
    """Kept slices of some cases of a prepared folder.

    Each item is ``(image, target)``: ``image`` FloatTensor[C, H, W] (normalised, brain-cropped),
    ``target`` a dict with ``boxes`` FloatTensor[N, 4] xyxy, ``labels`` Int64Tensor[N],
    ``masks`` UInt8Tensor[N, H, W] and ``image_id`` (int, from 1). N = 0 for negative slices.
    """

    def __init__(self, prepared: Prepared, case_ids: list[str], *, transforms: Callable | None = None,
                 negatives: bool = True):
        self.prepared = prepared
        self.transforms = transforms
        self.scheme = prepared.settings["scheme"]
        self.min_area = prepared.settings["min_area"]
        self.index: list[tuple[str, int]] = []
        self.is_negative: list[bool] = []
        for cid in case_ids:
            _, seg = prepared.arrays(cid)
            for s in prepared.case_meta(cid)["slices"]:
                neg = not seg[s].any()
                if neg and not negatives:
                    continue
                self.index.append((cid, int(s)))
                self.is_negative.append(neg)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _case(self, cid: str):
        if cid not in self._arrays:  # memory-mapped, opened lazily in each worker
            self._arrays[cid] = self.prepared.arrays(cid)
        return self._arrays[cid]

    def __getitem__(self, i: int):
        cid, s = self.index[i]
        img, seg = self._case(cid)
        image = torch.from_numpy(np.asarray(img[s], dtype=np.float32))
        masks, labels, boxes = slice_instances(np.asarray(seg[s]), self.scheme, self.min_area)
        target = {
            "boxes": torch.from_numpy(boxes),
            "labels": torch.from_numpy(labels),
            "masks": torch.from_numpy(masks),
            "image_id": i + 1,
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate(batch):
    return tuple(zip(*batch))
