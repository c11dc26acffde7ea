"""A prepared folder read back: settings, cases, folds and each case's slice arrays (see
`gliomask.data.prepare` for the layout)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gliomask.errors import GliomaskError

META_NAME = "prepared.json"
FORMAT_VERSION = 1


@dataclass
class Prepared:
    """A prepared folder, read back."""

    root: Path
    meta: dict = field(repr=False)

    @classmethod
    def open(cls, root: str | Path) -> "Prepared":
        root = Path(root)
        path = root / META_NAME
        if not path.is_file():
            raise GliomaskError(f"not a prepared folder (no {META_NAME}); run `gliomask prepare` first", root)
        try:
            meta = json.loads(path.read_text())
        except ValueError as exc:
            raise GliomaskError(f"cannot parse ({exc})", path) from None
        if meta.get("format") != FORMAT_VERSION:
            raise GliomaskError(f"prepared with an unsupported format {meta.get('format')}", path)
        return cls(root, meta)

    @property
    def settings(self) -> dict:
        return self.meta["settings"]

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def case_ids(self) -> list[str]:
        return [c["case"] for c in self.meta["cases"]]

    def case_meta(self, case_id: str) -> dict:
        for c in self.meta["cases"]:
            if c["case"] == case_id:
                return c
        raise GliomaskError(f"case {case_id} is not in this preparation", self.root)

    def split(self, fold: int | None) -> tuple[list[str], list[str]]:
        """(train ids, validation ids) for ``fold``; fold None trains on every case."""
        folds = self.meta["folds"]
        if fold is None:
            return self.case_ids, []
        if not 0 <= fold < len(folds):
            raise GliomaskError(f"fold {fold} does not exist (folds 0..{len(folds) - 1})", self.root)
        val = folds[fold]
        return [c for c in self.case_ids if c not in val], list(val)

    def arrays(self, case_id: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
        mode = "r" if mmap else None
        base = self.root / "cases" / case_id
        return np.load(f"{base}.img.npy", mmap_mode=mode), np.load(f"{base}.seg.npy", mmap_mode=mode)
