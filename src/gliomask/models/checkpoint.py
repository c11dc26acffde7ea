"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` so that a model file
can never run code. A checkpoint carries everything `predict` needs: config, class names, modalities
and their order, label convention, normalisation and slicing axis, score thresholds and versions.
"""

from __future__ import annotations

import pickle
from pathlib import Path

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


def load_checkpoint(path: str | Path) -> dict:
    """Read a gliomask checkpoint safely; any problem is one clear GliomaskError."""
    path = Path(path)
    if not path.is_file():
        raise GliomaskError("checkpoint not found", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0] if lines else type(exc).__name__)
        first = first.split(". Please use")[0]
        raise GliomaskError(f"refused: the file holds more than tensors and plain values and could run code ({first})", path) from None
    except Exception as exc:
        raise GliomaskError(f"unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", path) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise GliomaskError("not a gliomask checkpoint (missing format marker)", path)
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise GliomaskError(f"checkpoint lacks {', '.join(missing)}", path)
    return obj
