"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` so that a model file
can never run code. A checkpoint carries everything `predict` needs: config, class names, modalities
and their order, label convention, normalisation and slicing axis, score thresholds and versions.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from gliomask.errors import GliomaskError
from gliomask.io.atomic import atomic_path

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = ("format", "model", "config", "classes", "modalities", "scheme", "label_convention",
                 "normalization", "axis")


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    obj = {"format": CHECKPOINT_FORMAT, **obj}
    with atomic_path(Path(path)) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def safe_load(path: Path) -> object:
    """``torch.load(weights_only=True)``: tensors and plain values only. A pickle that would run code,
    or any unreadable file, is one GliomaskError naming ``path``; torch's warnings about the pickle
    protocol of a refused file stay off the console (the error is the one line)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0] if lines else type(exc).__name__)
        first = first.split(". Please use")[0].split(". In PyTorch")[0]
        raise GliomaskError(f"refused: the file holds more than tensors and plain values and could run code ({first})", path) from None
    except Exception as exc:
        raise GliomaskError(f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", path) from None


def load_checkpoint(path: str | Path) -> dict:
    """Read a gliomask checkpoint safely; any problem is one clear GliomaskError."""
    path = Path(path)
    if not path.is_file():
        raise GliomaskError("checkpoint not found", path)
    obj = safe_load(path)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise GliomaskError("not a gliomask checkpoint (missing format marker)", path)
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise GliomaskError(f"checkpoint lacks {', '.join(missing)}", path)
    problem = _bad_value(obj)
    if problem:
        raise GliomaskError(f"checkpoint holds a bad value: {problem}", path)
    return obj


def _bad_value(obj: dict) -> str | None:
    """The first setting a predictor cannot use (a damaged or hand-edited checkpoint), or None."""
    from gliomask.data.planes import AXES
    from gliomask.io.brats import MODALITY_ALIASES

    if obj.get("axis") not in AXES:
        return f"axis {obj.get('axis')!r} (expected one of {', '.join(AXES)})"
    for plane in obj.get("planes") or []:
        if plane not in AXES:
            return f"plane {plane!r}"
    mods = obj.get("modalities")
    if not isinstance(mods, (list, tuple)) or not mods or any(m not in MODALITY_ALIASES for m in mods):
        return f"modalities {mods!r}"
    norm = obj.get("normalization")
    try:
        lo, hi = (float(v) for v in norm["clip_percentiles"])
        margin = norm["crop_margin"]
        if not (0 <= lo < hi <= 100) or not isinstance(margin, int) or margin < 0:
            raise ValueError
    except (TypeError, KeyError, ValueError):
        return f"normalization {norm!r} (clip_percentiles [lo, hi] within 0-100, crop_margin >= 0)"
    context = obj.get("context", 0)
    if not isinstance(context, int) or context < 0:
        return f"context {context!r}"
    geometry = obj.get("geometry")
    if geometry is not None:
        try:
            codes = "".join(geometry["orientation"])
            spacing = [float(v) for v in geometry["spacing"]]
            if sorted(codes.replace("L", "R").replace("P", "A").replace("I", "S")) != ["A", "R", "S"] \
                    or len(spacing) != 3 or min(spacing) <= 0:
                raise ValueError
        except (TypeError, KeyError, ValueError):
            return f"geometry {geometry!r} (orientation like LPS, three positive spacings)"
    corr = obj.get("modality_correlations")
    if corr is not None:
        try:
            matrix = np.asarray(corr, dtype=float)
            if matrix.shape != (len(mods), len(mods)) or not np.all(np.abs(matrix) <= 1):
                raise ValueError
        except (TypeError, ValueError):
            return f"modality_correlations {corr!r} (a modalities x modalities matrix within -1..1)"
    share = obj.get("enhancement_share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1):
        return f"enhancement_share {share!r} (a share between 0 and 1)"
    return None
