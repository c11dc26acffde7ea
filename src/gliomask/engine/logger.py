"""Training log: JSON lines on rank 0, optionally mirrored to TensorBoard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gliomask.errors import GliomaskError
from gliomask.io.atomic import append_text, atomic_path


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

    def keep_before(self, epoch: int, through_step: int | None = None) -> None:
        """On resume: drop the records of ``epoch`` and later, which the resumed run logs again; with
        ``through_step`` (a run stopped mid-epoch) keep ``epoch``'s training records up to that step."""
        if not self.enabled or not self.path.is_file():
            return
        if self.path.is_symlink():
            raise GliomaskError("metrics.jsonl is a symbolic link; refusing to write through it", self.path)
        lines = self.path.read_text().splitlines(keepends=True)
        def kept_record(record: dict) -> bool:
            if record.get("epoch", -1) < epoch:
                return True
            return (through_step is not None and record.get("epoch") == epoch and record.get("type") == "train"
                    and record.get("step", 0) <= through_step)

        kept = [ln for ln in lines if ln.strip() and kept_record(json.loads(ln))]
        if len(kept) != len(lines):
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(kept))

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        append_text(self.path, json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"{record['type']}/{k}", v, record.get("step", 0))


def say(run: Path | None, text: str) -> None:
    """A status line: printed to stderr at once and, given a run folder (rank 0), appended to its
    ``train.log`` with a timestamp, so that a batch job's progress can be read from the run itself."""
    print(text, file=sys.stderr, flush=True)
    if run is not None:
        append_text(run / "train.log", f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
