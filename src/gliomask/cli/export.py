"""`gliomask export`: a checkpoint as one ONNX file that predicts on its own (onnxruntime)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's network and settings to one ONNX file")
    p.add_argument("-m", "--model", required=True, type=Path, help="checkpoint (best.pt)")
    p.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write (model.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.errors import GliomaskError
    from gliomask.models.onnx_export import export_onnx

    if args.output.suffix.lower() != ".onnx":
        raise GliomaskError("the output must end in .onnx", args.output)
    if importlib.util.find_spec("onnx") is None:
        raise GliomaskError("gliomask export needs the onnx package (pip install gliomask[onnx])")
    path = export_onnx(args.model, args.output, opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); predict with gliomask predict -m {path}")
    return 0
