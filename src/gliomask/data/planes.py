"""Slicing a prepared volume along other planes than the one it was prepared in (multi-plane input).

A prepared volume is ``[S, C, A, B]``: slices along the prepared axis first, then the two other array
axes in their order. A plane is named by the array axis it cuts (sagittal 0, coronal 1, axial 2, as
`prepare --axis`). `plane_view` returns the same data as ``[S', C, H, W]`` slices of that plane, and
`from_plane` brings a ``[..., S', H, W]`` result back to ``[..., S, A, B]``. Views, no copies.
"""

from __future__ import annotations

import numpy as np

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def plane_dim(prepared_axis: str, plane: str) -> int:
    """Which dimension of a ``[S, C, A, B]`` volume prepared along ``prepared_axis`` the ``plane`` cuts (0, 2 or 3)."""
    if plane not in AXES:
        raise ValueError(f"unknown plane {plane!r}; choose from {', '.join(AXES)}")
    native = AXES[prepared_axis]
    if AXES[plane] == native:
        return 0
    others = [a for a in range(3) if a != native]
    return 2 + others.index(AXES[plane])


def plane_view(volume: np.ndarray, dim: int) -> np.ndarray:
    """``[S, C, A, B]`` -> ``[S', C, H, W]`` slices across dimension ``dim`` (0: the volume itself)."""
    if dim == 0:
        return volume
    if dim == 2:
        return volume.transpose(2, 1, 0, 3)  # [A, C, S, B]
    if dim == 3:
        return volume.transpose(3, 1, 0, 2)  # [B, C, S, A]
    raise ValueError(dim)


def seg_view(seg: np.ndarray, dim: int) -> np.ndarray:
    """``[S, A, B]`` labels -> ``[S', H, W]``, matching `plane_view`."""
    if dim == 0:
        return seg
    if dim == 2:
        return seg.transpose(1, 0, 2)
    if dim == 3:
        return seg.transpose(2, 0, 1)
    raise ValueError(dim)


def from_plane(array: np.ndarray, dim: int) -> np.ndarray:
    """``[..., S', H, W]`` computed on `plane_view`/`seg_view` slices -> ``[..., S, A, B]``."""
    if dim == 0:
        return array
    lead = array.ndim - 3
    axes = list(range(lead))
    if dim == 2:  # [A, S, B] -> [S, A, B]
        return array.transpose(*axes, lead + 1, lead, lead + 2)
    if dim == 3:  # [B, S, A] -> [S, A, B]
        return array.transpose(*axes, lead + 1, lead + 2, lead)
    raise ValueError(dim)
