"""Reading and writing BraTS-style NIfTI cases."""

from gliomask.io.brats import (
    CANONICAL_MODALITIES,
    Case,
    LoadedCase,
    discover_cases,
    load_case,
    parse_modalities,
)
from gliomask.io.atomic import atomic_output_dir, atomic_path
from gliomask.io.nifti import save_like

__all__ = [
    "CANONICAL_MODALITIES",
    "Case",
    "LoadedCase",
    "discover_cases",
    "load_case",
    "parse_modalities",
    "save_like",
    "atomic_path",
    "atomic_output_dir",
]
