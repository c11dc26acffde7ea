"""A torch Dataset over the kept slices of a prepared folder."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from gliomask.data.instances import slice_instances
from gliomask.data.planes import plane_dim, plane_view, seg_view
from gliomask.labels import regions_from_labels
from gliomask.data.prepared import Prepared


MAX_OPEN_CASES = 64  # cases whose arrays stay memory-mapped in one worker (2 file descriptors each)


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

    ``modality_flags`` appends one constant channel per modality (1 present, 0 absent: see
    `with_modality_flags`), so ``image`` has C more channels; a modality the case lacks (prepared with
    ``allow_missing``) is zero and flagged absent. ``modality_dropout`` is the share of slices on which
    a random non-empty subset of the present modalities is kept and the rest zeroed and flagged absent
    (after augmentation), so that the model learns to read any subset.
    """

    def __init__(self, prepared: Prepared, case_ids: list[str], *, transforms: Callable | None = None,
                 negatives: bool = True, scheme: str | None = None, context: int = 0,
                 planes: tuple[str, ...] | None = None, modality_flags: bool = False, modality_dropout: float = 0.0):
        self.prepared = prepared
        self.modality_flags = modality_flags
        self.modality_dropout = modality_dropout
        self.modalities = list(prepared.settings["modalities"])
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
        self._arrays: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

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
        """A case's memory-mapped arrays, opened lazily in each worker. Each map holds a file descriptor:
        only the MAX_OPEN_CASES most recently used stay open, so that a BraTS-sized set (1,000+ cases,
        two maps each) stays far below a usual ``ulimit -n`` of 1,024 in every worker."""
        if cid in self._arrays:
            self._arrays.move_to_end(cid)
        else:
            while len(self._arrays) >= MAX_OPEN_CASES:
                self._arrays.popitem(last=False)  # the maps close when their last reference goes
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
        if aug_seed is None:
            image, target = self._transform(image, target, cid)
        else:  # this sample's own stream, whatever process and worker draws it
            with torch.random.fork_rng(devices=[]):
                # The CPU generator is all augmentation draws from; torch.manual_seed would also seed
                # (lazily, with a stack trace each time) every accelerator: 0.8 ms of a 7 ms slice.
                torch.default_generator.manual_seed(aug_seed)
                image, target = self._transform(image, target, cid)
        return image, target

    def _transform(self, image: torch.Tensor, target: dict, cid: str):
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        if self.modality_flags:
            present = available_modalities(self.prepared.case_meta(cid), self.modalities)
            keep = [m in present for m in self.modalities]
            if self.modality_dropout and len(present) > 1 and float(torch.rand(())) < self.modality_dropout:
                kept = torch.randperm(len(present))[:int(torch.randint(1, len(present), ()))]
                keep = [m in {present[int(i)] for i in kept} for m in self.modalities]
            image = with_modality_flags(image, torch.tensor(keep, dtype=image.dtype))
        return image, target


def context_stack(volume: np.ndarray, s: int, context: int) -> np.ndarray:
    """Float32 [C * (2k + 1), H, W]: slices s-k..s+k of ``volume`` [S, C, H, W], clamped at the ends,
    ordered slice-major (all modalities of s-k first). k = 0 gives the slice itself."""
    if context == 0:
        return _float32(volume[s])
    idx = np.clip(np.arange(s - context, s + context + 1), 0, volume.shape[0] - 1)
    stack = _float32(volume[idx])  # [2k+1, C, H, W]
    return stack.reshape(-1, *stack.shape[2:])


def _float32(array) -> np.ndarray:
    """Float32 copy of an array (prepared volumes are float16): torch converts half precision about ten
    times faster than numpy, which matters in a loader worker that feeds a GPU."""
    array = np.asarray(array)
    if array.dtype == np.float16:
        # torch wants a contiguous buffer of its own: a context-0 slice of a read-only memmap is copied
        return torch.from_numpy(np.require(array, requirements=["C", "W"])).float().numpy()
    return np.array(array, dtype=np.float32)


def available_modalities(case_meta: dict, modalities: list[str]) -> list[str]:
    """The modalities a prepared case has (all of ``modalities`` unless it was prepared without some)."""
    have = case_meta.get("available")
    return list(modalities) if have is None else [m for m in modalities if m in have]


def with_modality_flags(image: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Float [..., C * (2k + 1), H, W] slices (slice-major, see `context_stack`) and Float [C] flags ->
    Float [..., C * (2k + 2), H, W]: each absent modality's channels zeroed, then one constant channel per
    modality holding its flag (1 present, 0 absent). The network thus knows a zero channel is missing,
    not dark, and one model serves every subset of the modalities it was trained on."""
    c = flags.numel()
    flags = flags.to(image.dtype)
    lead, (h, w) = image.shape[:-3], image.shape[-2:]
    image = (image.reshape(*lead, -1, c, h, w) * flags.view(c, 1, 1)).reshape(*lead, -1, h, w)
    planes = flags.view(*(1,) * len(lead), c, 1, 1).expand(*lead, c, h, w)
    return torch.cat([image, planes], dim=-3)


def collate(batch):
    return tuple(zip(*batch))
