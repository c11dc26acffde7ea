"""`gliomask export`: a checkpoint's per-slice network as one ONNX file that predicts on its own.

The graph takes one slice, Float32 [C, H, W] with any H and W (C = modalities x (2 context + 1), plus
one flag channel per modality for a model trained with ``model.modality_flags``), and
returns the detector's boxes [N, 4], scores [N], labels [N], soft masks [N, 1, H, W] and the dense
region probabilities [3, H, W] (zeros for a model without region head). Everything `predict` needs
besides the weights (modalities, normalisation, classes, post-processing, planes, context slices,
provenance) is stored as JSON in the model's metadata under ``gliomask``.

torchvision's Mask R-CNN exports with the TorchScript-based exporter (``dynamo=False``); the dynamo
exporter stops at the data-dependent shapes of its batched NMS (see ../shared/TORCHVISION.md).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from gliomask.errors import GliomaskError
from gliomask.io.atomic import atomic_path
from gliomask.models.checkpoint import load_checkpoint
from gliomask.models.factory import model_from_checkpoint

METADATA_KEY = "gliomask"
DIGEST_KEY = "gliomask_sha256"  # sha256 over the metadata JSON and the serialised graph, as export wrote them
OUTPUTS = ("boxes", "scores", "labels", "masks", "regions")
# Checkpoint entries that are training state, not what a prediction needs.
TRAINING_ONLY = ("model", "optimizer", "scheduler", "scaler", "rng", "rng_per_rank", "train_model", "ema", "validation", "val_seconds")


class SliceNetwork(torch.nn.Module):
    """One slice in, the detector's and the region head's outputs out, as plain tensors."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        out = self.model([image])[0]
        regions = out.get("regions")
        if regions is None:
            regions = torch.zeros((3, *image.shape[-2:]), dtype=image.dtype)
        return out["boxes"], out["scores"], out["labels"], out["masks"], regions


def export_digest(meta_json: str, graph_bytes: bytes) -> str:
    """The digest stored beside the metadata: any change to it or to the graph changes the digest."""
    return hashlib.sha256(meta_json.encode() + b"\0" + graph_bytes).hexdigest()


def export_metadata(checkpoint: dict) -> dict:
    """The checkpoint without its weights and training state: what `Predictor` reads besides the network."""
    return {k: v for k, v in checkpoint.items() if k not in TRAINING_ONLY}


def export_onnx(checkpoint_path: str | Path, out: str | Path, *, opset: int = 17) -> Path:
    """Write the checkpoint's network and metadata to ``out`` (atomically); returns ``out``."""
    import onnx  # optional dependency: pip install gliomask[onnx]

    checkpoint_path, out = Path(checkpoint_path), Path(out)
    checkpoint = load_checkpoint(checkpoint_path)
    model, _ = model_from_checkpoint(checkpoint, str(checkpoint_path))
    meta = export_metadata(checkpoint)
    try:
        meta_json = json.dumps(meta)
    except TypeError as exc:
        raise GliomaskError(f"cannot export: the checkpoint's settings are not plain values ({exc})", checkpoint_path) from None
    channels = model.in_channels  # modalities x (2 context + 1), plus the modality flags (models.factory.input_channels)
    example = torch.zeros(channels, 192, 160)
    example[:, 40:150, 30:130] = torch.randn(channels, 110, 100)  # something for the detector to find
    dynamic = {"image": {1: "height", 2: "width"}, "boxes": {0: "detections"}, "scores": {0: "detections"},
               "labels": {0: "detections"}, "masks": {0: "detections", 2: "height", 3: "width"},
               "regions": {1: "height", 2: "width"}}
    with atomic_path(out) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's warnings about Python control flow in torchvision
                torch.onnx.export(SliceNetwork(model), (example,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["image"], output_names=list(OUTPUTS), dynamic_axes=dynamic)
        except Exception as exc:  # the exporter raises many types; one line for the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GliomaskError(f"cannot export this checkpoint to ONNX ({type(exc).__name__}: {first})", checkpoint_path) from None
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta_json
        digest = proto.metadata_props.add()  # what export wrote: an edited graph or metadata is refused on load
        digest.key, digest.value = DIGEST_KEY, export_digest(meta_json, proto.graph.SerializeToString())
        proto.producer_name = "gliomask"
        onnx.save(proto, str(tmp))
    return out
