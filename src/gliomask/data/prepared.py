"""A prepared folder read back: settings, cases, folds and each case's slice arrays (see
`gliomask.data.prepare` for the layout)."""

from __future__ import annotations

import errno
import json
import resource
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
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise GliomaskError(f"prepared with an unsupported format {meta.get('format') if isinstance(meta, dict) else meta!r}", path)
        missing = [k for k in ("settings", "classes", "cases", "folds") if k not in meta]
        bad = missing or [k for k in ("modalities", "axis", "clip_percentiles", "crop_margin", "scheme")
                          if not isinstance(meta["settings"], dict) or k not in meta["settings"]]
        if bad or not all(isinstance(c, dict) and "case" in c for c in meta["cases"]):
            raise GliomaskError(f"damaged prepared.json (lacks {', '.join(bad) or 'case entries'}); prepare again", path)
        return cls(root, meta)

    @property
    def settings(self) -> dict:
        return self.meta["settings"]

    @property
    def geometry(self) -> dict:
        """The cases' voxel orientation and spacing (:func:`gliomask.data.geometry.training_geometry`)."""
        from gliomask.data.geometry import training_geometry

        return self.meta.get("geometry") or training_geometry(self.meta["cases"])

    @property
    def modality_correlations(self) -> list[list[float]] | None:
        """The cases' typical modality correlation matrix, in settings["modalities"] order
        (:mod:`gliomask.data.plausibility`); None for a folder prepared before 0.2."""
        return self.meta.get("modality_correlations")

    @property
    def enhancement_share(self) -> float | None:
        """The cases' typical share of brain voxels brighter on T1ce than on T1 (predict flags a T1ce
        without contrast enhancement); None before 0.2 or without both modalities."""
        return self.meta.get("enhancement_share")

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
        """(float16 [S, C, H, W] images, uint8 [S, H, W] labels) of a case; a missing, truncated or
        mismatched file is one clear error naming it."""
        mode = "r" if mmap else None
        base = self.root / "cases" / case_id
        out = []
        for path in (Path(f"{base}.img.npy"), Path(f"{base}.seg.npy")):
            try:
                out.append(np.load(path, mmap_mode=mode))
            except FileNotFoundError:
                raise GliomaskError("prepared array missing: the prepared folder is damaged; prepare again", path) from None
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):  # not damage: the process ran out of descriptors
                    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                    raise GliomaskError(f"too many open files (ulimit -n is {limit}): raise the limit, or use fewer "
                                        "train.workers", path) from None
                raise GliomaskError(f"prepared array unreadable ({type(exc).__name__}: {exc}); prepare again", path) from None
            except (ValueError, EOFError) as exc:
                raise GliomaskError(f"prepared array unreadable ({type(exc).__name__}: {exc}); prepare again", path) from None
        images, seg = out
        channels = len(self.settings["modalities"])
        if images.ndim != 4 or images.shape[1] != channels or seg.shape != (images.shape[0], *images.shape[2:]):
            raise GliomaskError(f"prepared arrays do not fit ({images.shape} images, {seg.shape} labels, "
                                f"{channels} modalities); prepare again", Path(f"{base}.img.npy"))
        return images, seg
