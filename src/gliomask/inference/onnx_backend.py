"""Prediction through onnxruntime: an exported ONNX file stands in for the PyTorch network.

`OnnxSliceModel` is called like the PyTorch model in eval mode (a list of Float [C, H, W] tensors in,
one dict of ``boxes``, ``scores``, ``labels``, ``masks`` and ``regions`` tensors per slice out), so
the rest of the prediction path is the same code for both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gliomask.errors import GliomaskError
from gliomask.models.onnx_export import METADATA_KEY


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise GliomaskError("--backend onnx needs onnxruntime (pip install gliomask[onnx])") from None
    return onnxruntime


class OnnxSliceModel:
    """An ``onnxruntime.InferenceSession`` over a `gliomask export` file, with the PyTorch model's call."""

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for damaged files
            raise GliomaskError(f"cannot load ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0]})", path) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise GliomaskError("not a gliomask ONNX export (no gliomask metadata); export with `gliomask export`", path)
        self.meta = json.loads(meta[METADATA_KEY])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def eval(self) -> "OnnxSliceModel":
        return self

    def to(self, device) -> "OnnxSliceModel":
        if torch.device(device).type != "cpu":
            raise GliomaskError("the ONNX backend runs on the CPU; use --device cpu")
        return self

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:  # the exported graph takes one slice
            values = self.session.run(None, {"image": np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)})
            out.append({name: torch.from_numpy(np.asarray(v)) for name, v in zip(self.outputs, values)})
        return out


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"
