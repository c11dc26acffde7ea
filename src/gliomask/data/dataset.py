"""A torch Dataset over the kept slices of a prepared folder."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from gliomask.data.instances import slice_instances
from gliomask.data.planes import plane_dim, plane_view, seg_view
from gliomask.labels import regions_from_labels
from gliomask.data.prepared import Prepared


class PreparedSlices(Dataset):
    """Kept slices of some cases of a prepared folder.

    Each item is ``(image, target)``: ``image`` FloatTensor[C * (2 * context + 1), H, W] (normalised,
    brain-cropped; see `context_stack`), ``target`` a dict with ``boxes`` FloatTensor[N, 4] xyxy,
    ``labels`` Int64Tensor[N], ``masks`` UInt8Tensor[N, H, W], ``regions`` UInt8Tensor[3, H, W]
    (WT, TC, ET) and ``image_id`` (int, from 1). N = 0 for negative slices.

    ``scheme`` is the detector's class scheme (default: the prepared one); ``context`` the number of
    neighbouring slices on each side stacked as extra channels (2.5-D input); ``planes`` the slicing
    planes (default: the prepared axis). Slices of another plane are its tumour slices plus the
    prepared share of tumour-free brain slices, chosen per case with the prepared seed.
    """

    def __init__(self, prepared: Prepared, case_ids: list[str], *, transforms: Callable | None = None,
                 negatives: bool = True, scheme: str | None = None, context: int = 0,
                 planes: tuple[str, ...] | None = None):
        self.prepared = prepared
        self.transforms = transforms
        self.context = context
        self.scheme = scheme or prepared.settings["scheme"]
        self.min_area = prepared.settings["min_area"]
        axis = prepared.settings["axis"]
        self.dims = [plane_dim(axis, p) for p in (planes or (axis,))]
        self.index: list[tuple[str, int, int]] = []
        self.is_negative: list[bool] = []
        for cid in case_ids:
            img, seg = prepared.arrays(cid)
            for dim in self.dims:
                for s in self._slices(cid, img, seg, dim):
                    neg = not seg_view(seg, dim)[s].any()
                    if neg and not negatives:
                        continue
                    self.index.append((cid, dim, int(s)))
                    self.is_negative.append(neg)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _slices(self, cid: str, img, seg, dim: int) -> list[int]:
        if dim == 0:
            return [int(s) for s in self.prepared.case_meta(cid)["slices"]]
        segv = seg_view(np.asarray(seg), dim)
        tumour = segv.reshape(len(segv), -1).any(axis=1)
        brain = np.moveaxis(np.abs(np.asarray(img[:, 0])) > 0, dim - 1, 0).reshape(len(segv), -1).any(axis=1)
        negatives = np.flatnonzero(brain & ~tumour)
        rng = np.random.default_rng([self.prepared.settings["seed"], dim, len(segv), int(tumour.sum())])
        keep = int(round(self.prepared.settings["negative_fraction"] * len(negatives)))
        chosen = rng.choice(negatives, size=keep, replace=False) if keep else np.zeros(0, int)
        return sorted(np.concatenate([np.flatnonzero(tumour), chosen]).astype(int).tolist())

    def __len__(self) -> int:
        return len(self.index)

    def _case(self, cid: str):
        if cid not in self._arrays:  # memory-mapped, opened lazily in each worker
            self._arrays[cid] = self.prepared.arrays(cid)
        return self._arrays[cid]

    def __getitem__(self, item: int | tuple[int, int]):
        """``item``: a slice index, or (index, augmentation seed) as the training sampler yields."""
        i, aug_seed = item if isinstance(item, tuple) else (item, None)
        cid, dim, s = self.index[i]
        img, seg = self._case(cid)
        image = torch.from_numpy(context_stack(plane_view(img, dim), s, self.context))
        label_slice = np.asarray(seg_view(seg, dim)[s])
        masks, labels, boxes = slice_instances(label_slice, self.scheme, self.min_area)
        target = {
            "boxes": torch.from_numpy(boxes),
            "labels": torch.from_numpy(labels),
            "masks": torch.from_numpy(masks),
            "regions": torch.from_numpy(regions_from_labels(label_slice).astype(np.uint8)),
            "image_id": i + 1,
        }
        if self.transforms is not None:
            if aug_seed is None:
                image, target = self.transforms(image, target)
            else:  # this sample's own stream, whatever process and worker draws it
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(aug_seed)
                    image, target = self.transforms(image, target)
        return image, target


def context_stack(volume: np.ndarray, s: int, context: int) -> np.ndarray:
    """Float32 [C * (2k + 1), H, W]: slices s-k..s+k of ``volume`` [S, C, H, W], clamped at the ends,
    ordered slice-major (all modalities of s-k first). k = 0 gives the slice itself."""
    if context == 0:
        return np.asarray(volume[s], dtype=np.float32)
    idx = np.clip(np.arange(s - context, s + context + 1), 0, volume.shape[0] - 1)
    stack = np.asarray(volume[idx], dtype=np.float32)  # [2k+1, C, H, W]
    return stack.reshape(-1, *stack.shape[2:])


def collate(batch):
    return tuple(zip(*batch))
