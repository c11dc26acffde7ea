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
from gliomask.models.factory import input_channels
from gliomask.models.onnx_export import DIGEST_KEY, METADATA_KEY, export_digest


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
        self.meta = _checked_metadata(path, meta)
        self.outputs = [o.name for o in self.session.get_outputs()]
        expected = input_channels(len(self.meta["modalities"]), int(self.meta.get("context", 0)),
                                  bool(((self.meta.get("config") or {}).get("model") or {}).get("modality_flags", False)))
        shape = self.session.get_inputs()[0].shape
        if not shape or shape[0] != expected:
            raise GliomaskError(f"the network takes {shape[0] if shape else '?'} input channels, but its metadata "
                                f"describes {expected} ({', '.join(self.meta['modalities'])}); not what export wrote",
                                path)

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


def _checked_metadata(path, meta: dict) -> dict:
    """The export's metadata, refused with one line when it is not what `gliomask export` wrote: invalid
    JSON, not a mapping, missing keys, or a digest that does not match the metadata and the graph."""
    text = meta[METADATA_KEY]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GliomaskError(f"damaged gliomask metadata in the ONNX file (not JSON: {exc}); export again", path) from None
    if not isinstance(data, dict):
        raise GliomaskError(f"damaged gliomask metadata in the ONNX file (a {type(data).__name__}, not a mapping); "
                            "export again", path)
    missing = [k for k in ("modalities", "classes", "scheme", "axis", "normalization", "config") if k not in data]
    if missing or not isinstance(data.get("modalities"), list) or not data["modalities"]:
        raise GliomaskError(f"damaged gliomask metadata in the ONNX file (lacks {', '.join(missing) or 'modalities'}); "
                            "export again", path)
    stored = meta.get(DIGEST_KEY)
    if stored is None:
        raise GliomaskError("the ONNX file carries no digest of what export wrote (exported before gliomask 0.2, "
                            "or edited): export it again", path)
    try:
        import onnx
    except ImportError:
        raise GliomaskError("--backend onnx needs onnx to check the file (pip install gliomask[onnx])") from None
    graph = onnx.load(str(path), load_external_data=False).graph.SerializeToString()
    if stored != export_digest(text, graph):
        raise GliomaskError("the ONNX file's metadata or graph was changed after `gliomask export` (digest "
                            "mismatch): predictions from it cannot be trusted; export again", path)
    return data


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"
