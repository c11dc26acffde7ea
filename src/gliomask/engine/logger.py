"""Training log: JSON lines on rank 0, optionally mirrored to TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

from gliomask.errors import GliomaskError


class Logger:
    """JSON lines on rank 0, optionally mirrored to TensorBoard."""

    def __init__(self, run: Path, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.path = run / "metrics.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GliomaskError("train.tensorboard=true needs the tensorboard package (pip install tensorboard)") from None
            self.tb = SummaryWriter(str(run / "tensorboard"))

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"{record['type']}/{k}", v, record.get("step", 0))
