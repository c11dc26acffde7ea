"""The MNI ICBM152 2009 brain template, shipped with gliomask (``data/mni``, with its NOTICE; no download).

Fonov et al., NeuroImage 54(1), 2011 and NeuroImage 47 S102, 2009 (unbiased nonlinear average of
152 adults, symmetric version 2009a). Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging
Centre, Montreal Neurological Institute, McGill University; the notice is in the README.

The three files (5 MB) are the ones nilearn's wheel carries, unchanged; shipping them spares every user
nilearn and what it pulls in (scikit-learn, pandas, requests, joblib) for three files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage as ndi

from gliomask.errors import GliomaskError

FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
CSF_GM_WM = ("csf", "gm", "wm")


@dataclass(frozen=True)
class Template:
    """Tissue fractions on the template's 1 mm grid, reoriented to LPS (the BraTS voxel order).

    fractions: float32 [X, Y, Z, 3] holding CSF, GM, WM fractions in [0, 1] (0 outside the brain), a view
    of ``volume``;
    depth: float32 [X/2, Y/2, Z/2] (every second voxel), distance in mm to the outside of the brain; centre: the brain's
    bounding-box centre in voxels.
    """

    fractions: np.ndarray
    depth: np.ndarray
    centre: np.ndarray
    volume: "torch.Tensor"  # the fractions as float32 [1, 3, Z, Y, X], the layout grid_sample reads


TEMPLATE_FOLDER = Path(__file__).parent / "mni"


def template_folder() -> Path:
    missing = [f for f in FILES.values() if not (TEMPLATE_FOLDER / f).is_file()]
    if missing:
        raise GliomaskError(f"the MNI template files are missing from the installation ({', '.join(missing)}); "
                            "reinstall gliomask (or use --anatomy simple)", TEMPLATE_FOLDER)
    return TEMPLATE_FOLDER


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Read the template once per process (about 0.6 s)."""
    folder = template_folder()
    arrays = {}
    for name, file in FILES.items():
        img = nib.load(folder / file)
        # RAS -> LPS, the orientation of BraTS images: flip the first two axes.
        ornt = nib.orientations.ornt_transform(nib.io_orientation(img.affine),
                                               nib.orientations.axcodes2ornt(("L", "P", "S")))
        data = nib.orientations.apply_orientation(np.asanyarray(img.dataobj), ornt)
        # Fortran order (as NIfTI stores it): its transpose is the C-ordered [Z, Y, X] grid_sample reads.
        arrays[name] = np.asfortranarray(data, dtype=np.float32)
        arrays[name] /= np.float32(255.0)
    brain = arrays["t1"] > 0  # the template is skull-stripped: zero outside the brain
    gm, wm = arrays["gm"] * brain, arrays["wm"] * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    volume = np.empty((3,) + brain.shape[::-1], np.float32)  # [3, Z, Y, X]
    for channel, fraction in enumerate((csf, gm, wm)):
        volume[channel] = fraction.T
    fractions = volume.transpose(3, 2, 1, 0)  # a view: [X, Y, Z, 3]
    depth = ndi.distance_transform_edt(brain[::2, ::2, ::2]).astype(np.float32) * 2  # 2 mm grid is enough
    extent = [np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    centre = np.array([(e[0] + e[-1]) / 2.0 for e in extent])
    return Template(fractions=fractions, depth=depth, centre=centre.astype(np.float32),
                    volume=torch.from_numpy(volume)[None])
