"""Synthetic BraTS-like cases written in the exact BraTS folder layout and NIfTI format.

Two anatomies. "mni" (the default, :mod:`gliomask.data.synth_anatomy`): a real brain, the MNI ICBM152
template deformed per case, with gliomas that push tissue aside and spread along white matter.
"simple" (below, kept because tests and quick checks like its speed): a skull-stripped, head-shaped brain (CSF, grey and white matter, ventricles) whose
contrasts differ across T1, T1ce, T2 and FLAIR, with a smooth bias field and noise, and 0-3 tumours.
A tumour has oedema (bright on T2 and FLAIR), and a core that is either an enhancing rim (bright on
T1ce) around a necrotic centre (dark on T1ce, bright on T2) or, in LGG-like cases, non-enhancing only.
So WT is found on FLAIR/T2, TC and ET need T1ce, as in real gliomas.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from gliomask.errors import GliomaskError
from gliomask.io.brats import CANONICAL_MODALITIES, CONVENTIONS
from gliomask.io.atomic import atomic_output_dir
from gliomask.io.nifti import write_image
from gliomask.data.synth_tumour import TumourMix, smooth_noise
from gliomask.labels import ENHANCING, NECROTIC, OEDEMA, to_convention

SHAPE = (240, 240, 155)
# BraTS images carry an LPS-like affine: x and y flipped against RAS, 1 mm voxels.
BRATS_AFFINE = np.array(
    [[-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 239.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

# Tissue classes and their mean intensity per modality (arbitrary scanner units).
BG, CSF, GM, WM, NCR, ED, ET = range(7)
INTENSITY = {
    "t1": [0, 260, 560, 760, 360, 540, 620],
    "t1ce": [0, 270, 570, 770, 300, 620, 1450],
    "t2": [0, 1800, 1000, 700, 1750, 1350, 1100],
    "flair": [0, 180, 820, 620, 950, 1350, 1050],
}


ANATOMIES = ("mni", "simple")


@dataclass(frozen=True)
class SynthSpec:
    index: int
    seed: int
    edition: str = "2019"
    anatomy: str = "mni"
    mix: TumourMix = TumourMix()


def synth_case(index: int, seed: int, anatomy: str = "mni", resect: float = 0.0,
               mix: TumourMix = TumourMix()) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return ({modality: int16 [240,240,155]}, seg uint8 with internal labels 0/1/2/4). Deterministic.

    ``anatomy="mni"`` builds the case on the MNI ICBM152 template (:mod:`gliomask.data.synth_anatomy`);
    ``"simple"`` is the older geometric head (an ellipsoid with flat tissue), faster and kept for tests.
    ``resect`` > 0 (mni only): a post-operative case whose main tumour's centre is a resection cavity
    (internal label 5), as BraTS 2024 post-treatment cases have. ``mix`` (mni only): the kinds of
    tumours drawn (`TumourMix`).
    """
    if anatomy == "mni":
        from gliomask.data.synth_anatomy import synth_anatomy_case  # imports torch and reads the template

        return synth_anatomy_case(index, seed, resect=resect, mix=mix)
    if anatomy != "simple":
        raise GliomaskError(f"unknown anatomy {anatomy!r}; choose {' or '.join(ANATOMIES)}")
    if not mix.is_default:
        raise GliomaskError("a tumour mix (enhancing fraction, core radius, oedema ratio) needs the mni anatomy")
    if resect:
        raise GliomaskError("resection cavities (edition 2024) need the mni anatomy")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    centre = np.array([120, 118, 70], dtype=np.float32) + rng.uniform(-4, 4, 3).astype(np.float32)
    radii = np.array([66, 84, 62], dtype=np.float32) * rng.uniform(0.93, 1.05, 3).astype(np.float32)
    # Work inside the brain's bounding box only: three times fewer voxels than the full grid.
    lo = np.maximum(np.floor(centre - radii * 1.06).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radii * 1.06).astype(int) + 1, SHAPE)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    x, y, z = [np.arange(a, b, dtype=np.float32) for a, b in zip(lo, hi)]
    sub_shape = tuple(int(b - a) for a, b in zip(lo, hi))
    u = ((x - centre[0]) / radii[0])[:, None, None]
    v = ((y - centre[1]) / radii[1])[None, :, None]
    w = ((z - centre[2]) / radii[2])[None, None, :]
    rho = np.sqrt(u * u + v * v + w * w) * (1 + 0.04 * smooth_noise(rng, u, v, w, terms=2))
    brain = (rho < 1.0) & (w > -0.75)
    depth = 1.0 - rho  # 0 at the brain surface, 1 at the centre

    tissue = np.zeros(sub_shape, dtype=np.uint8)
    tissue[brain] = WM
    cortex = 0.11 + 0.035 * smooth_noise(rng, u, v, w, terms=2, freq=(8.0, 14.0))
    tissue[brain & (depth < cortex)] = GM
    tissue[brain & (depth < 0.025)] = CSF
    for side in (-1, 1):  # lateral ventricles
        cx, cy, cz = centre + np.array([side * 9, 4, 12], dtype=np.float32)
        rv = ((x - cx) / 5.5)[:, None, None] ** 2 + ((y - cy) / 24)[None, :, None] ** 2 + ((z - cz) / 9)[None, None, :] ** 2
        tissue[rv < 1.0] = CSF

    seg_sub = np.zeros(sub_shape, dtype=np.uint8)
    n_tumours = rng.choice(4, p=[0.12, 0.55, 0.23, 0.10])  # 0 to 3 tumours
    enhancing = rng.random() < 0.75  # LGG-like cases have a non-enhancing core only
    for _ in range(n_tumours):
        _add_tumour(rng, seg_sub, depth, brain, enhancing)
    tissue[seg_sub == OEDEMA] = ED
    tissue[seg_sub == NECROTIC] = NCR
    tissue[seg_sub == ENHANCING] = ET
    tumour = np.nonzero(seg_sub)
    heterogeneity = 1 + 0.08 * np.sin(0.35 * tumour[0] + 0.27 * tumour[1] + 0.31 * tumour[2] + rng.uniform(0, 6.3))

    images = {}
    for mod in CANONICAL_MODALITIES:
        vol = np.asarray(INTENSITY[mod], dtype=np.float32)[tissue]
        vol[tumour] *= heterogeneity.astype(np.float32)
        a = rng.uniform(-0.12, 0.12, 6).astype(np.float32)
        vol *= 1 + a[0] * u + a[1] * v + a[2] * w + 0.4 * (a[3] * u * u + a[4] * v * v + a[5] * w * w)
        vol += rng.standard_normal(sub_shape, dtype=np.float32) * np.float32(0.03 * INTENSITY[mod][WM])
        vol = np.where(brain, np.clip(vol, 1, 32000), 0)  # skull-stripped: background exactly 0
        full = np.zeros(SHAPE, dtype=np.int16)
        full[box] = vol.astype(np.int16)
        images[mod] = full
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[box] = seg_sub
    return images, seg


def _add_tumour(rng, seg, depth, brain, enhancing) -> None:
    """Paint one tumour (oedema, necrotic core, or an enhancing rim around necrosis) into ``seg``."""
    r_ed = rng.uniform(9, 26) * rng.uniform(0.75, 1.25, 3)
    candidates = np.argwhere(depth[::4, ::4, ::4] > 0.35) * 4
    c = candidates[rng.integers(len(candidates))] + rng.integers(0, 4, 3)
    lo = np.maximum(c - np.ceil(r_ed * 1.3).astype(int), 0)
    hi = np.minimum(c + np.ceil(r_ed * 1.3).astype(int) + 1, seg.shape)
    grids = [np.arange(lo[i], hi[i], dtype=np.float32) - c[i] for i in range(3)]
    u = (grids[0] / r_ed[0])[:, None, None]
    v = (grids[1] / r_ed[1])[None, :, None]
    w = (grids[2] / r_ed[2])[None, None, :]
    rho = np.sqrt(u * u + v * v + w * w) * (1 + 0.12 * smooth_noise(rng, u, v, w, freq=(1.0, 3.0)))
    box = tuple(slice(lo[i], hi[i]) for i in range(3))
    inside = brain[box]
    core_frac = rng.uniform(0.4, 0.7)
    nec_frac = rng.uniform(0.35, 0.65)
    sub = seg[box]
    sub[(rho < 1.0) & inside & (sub == 0)] = OEDEMA
    core = (rho < core_frac) & inside
    if enhancing:
        sub[core] = ENHANCING
        sub[(rho < core_frac * nec_frac) & inside] = NECROTIC
    else:
        sub[core] = NECROTIC


EDITIONS = {"2019": "brats2019", "2023": "brats2023", "2024": "brats2024"}  # --edition -> label convention
RESECT_2024 = 0.7  # cavity radius of a 2024 (post-operative) case, in units of its main tumour's core radius


def case_id_for(index: int, edition: str) -> str:
    return f"BraTS19_SYN_{index:04d}_1" if edition == "2019" else f"BraTS-GLI-{index:05d}-000"


def _save_brats_nifti(data: np.ndarray, path: Path) -> None:
    """Write ``data`` in its own dtype with the BraTS affine as qform and sform (code 1), units mm."""
    img = nib.Nifti1Image(data, BRATS_AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.set_data_dtype(data.dtype)
    img.set_qform(BRATS_AFFINE, code=1)
    img.set_sform(BRATS_AFFINE, code=1)
    write_image(img, path)


def write_case(folder: Path, case_id: str, edition: str, images: dict[str, np.ndarray], seg: np.ndarray) -> None:
    """Files named as ``edition`` names them (2019: ``_t1``; 2023 and 2024: ``-t1n``), labels in its convention."""
    conv = CONVENTIONS["brats2019" if edition == "2019" else "brats2023"]
    folder.mkdir(parents=True, exist_ok=True)
    for mod, data in images.items():
        _save_brats_nifti(data.astype(np.int16, copy=False), folder / f"{case_id}{conv['sep']}{conv['suffix'][mod]}.nii.gz")
    labels = to_convention(seg, EDITIONS[edition])
    _save_brats_nifti(labels.astype(np.uint8, copy=False), folder / f"{case_id}{conv['sep']}seg.nii.gz")


def _synth_one(spec: SynthSpec, root: Path) -> str:
    images, seg = synth_case(spec.index, spec.seed, spec.anatomy, RESECT_2024 if spec.edition == "2024" else 0.0,
                             spec.mix)
    case_id = case_id_for(spec.index, spec.edition)
    if spec.edition == "2019":
        group = "HGG" if np.any(seg == ENHANCING) else "LGG"
        folder = root / group / case_id
    else:
        folder = root / case_id
    write_case(folder, case_id, spec.edition, images, seg)
    return case_id


def synthesize(out: str | Path, *, cases: int, seed: int = 0, edition: str = "2019", workers: int = 1,
               start: int = 1, progress: bool = False, anatomy: str = "mni",
               mix: TumourMix = TumourMix()) -> list[str]:
    """Write ``cases`` synthetic cases under ``out`` (BraTS 2019 ``HGG/``/``LGG/``, or 2023 names; ``edition
    "2024"``: 2023 names, post-operative cases with a resection cavity, labels of BraTS 2024 post-treatment).

    ``anatomy``: "mni" (a deformed MNI template brain with gliomas) or "simple" (see :func:`synth_case`).
    ``mix`` (mni only): the kinds of tumours drawn (`TumourMix`: enhancing share, core size, oedema).

    The folder is written atomically: it must not exist yet. Returns the case ids.
    """
    out = Path(out)
    if edition not in EDITIONS:
        raise GliomaskError(f"unknown edition {edition!r}; choose {', '.join(EDITIONS)}")
    if edition == "2024" and anatomy != "mni":
        raise GliomaskError("edition 2024 (resection cavities) needs --anatomy mni")
    if cases < 1:
        raise GliomaskError("--cases must be at least 1")
    if anatomy not in ANATOMIES:
        raise GliomaskError(f"unknown anatomy {anatomy!r}; choose {' or '.join(ANATOMIES)}")
    if anatomy != "mni" and not mix.is_default:
        raise GliomaskError("a tumour mix (--enhancing-fraction, --core-radius, --oedema-ratio) needs --anatomy mni")
    if anatomy == "mni":
        from gliomask.data.template import template_folder

        template_folder()  # missing template files are reported before anything is written
    if out.exists() and any(out.iterdir()):
        raise GliomaskError("output folder exists and is not empty", out)
    if out.exists():
        out.rmdir()
    specs = [SynthSpec(start + i, seed, edition, anatomy, mix) for i in range(cases)]
    from gliomask.utils import progress_bar

    with atomic_output_dir(out) as tmp:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                ids = list(progress_bar(pool.map(_synth_one, specs, [tmp] * len(specs)), total=len(specs),
                                        desc="synth", enabled=progress))
        else:
            ids = [_synth_one(s, tmp) for s in progress_bar(specs, desc="synth", enabled=progress)]
    return ids
