"""Synthetic BraTS cases on a real brain: the MNI ICBM152 template, deformed per case, with gliomas.

Per case: a random affine (scale, small rotation, shift) and a smooth elastic deformation map the BraTS
grid (240 x 240 x 155, 1 mm, LPS) into the template; the template's grey and white matter fractions
(CSF = brain - GM - WM) are sampled there, tumours push neighbouring tissue away (mass effect), and the
four contrasts are made from the tissue fractions with the orderings real scans have (T1 WM > GM > CSF,
T2 CSF > GM > WM, FLAIR GM > WM > CSF with CSF suppressed, T1ce like T1 plus enhancing vessels), a
bias field, Rician noise and int16 output. Only voxels inside the (deformed) brain are computed.
Tumours are painted by :mod:`gliomask.data.synth_tumour`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

from gliomask.data.synth import SHAPE
from gliomask.data.synth_tumour import TumourMix, TumourPlan, carve_cavity, paint_tumours, plan_tumours
from gliomask.data.template import Template, load_template

# Where the brain sits in BraTS's grid (centre of the bounding box of real BraTS brains, in voxels) and
# how the template's size compares with theirs (BraTS brains are a little shorter in y and z).
BRATS_BRAIN_CENTRE = np.array([119.5, 130.0, 73.5], dtype=np.float32)
BASE_SCALE = np.array([0.98, 0.94, 0.92], dtype=np.float32)

# Mean intensity per tissue in units of the modality's white matter: CSF, GM, WM.
TISSUE = {
    "t1": (0.32, 0.68, 1.0),
    "t1ce": (0.45, 0.80, 1.0),  # post-contrast T1 has less grey-white contrast
    "t2": (2.7, 1.35, 1.0),
    "flair": (0.28, 1.15, 1.0),
}
NOISE_SIGMA = 0.035  # Rician noise, fraction of white matter intensity


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    a, b, c = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return (rx @ ry @ rz).astype(np.float32)


class GridToTemplate:
    """Output voxel (BraTS grid) -> template voxel: affine plus a sum of smooth sinusoidal displacements."""

    def __init__(self, rng: np.random.Generator, template: Template):
        scale = BASE_SCALE * rng.uniform(0.92, 1.05) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
        self.matrix = (_rotation(rng, 6.0) / scale[None, :]).astype(np.float32)  # output mm -> template mm
        self.out_centre = BRATS_BRAIN_CENTRE + rng.uniform(-4, 4, 3).astype(np.float32)
        self.tpl_centre = template.centre
        # Smooth displacement: 4 plane waves, wavelengths 50-140 mm, amplitudes about 2-4 mm per axis.
        direction = rng.normal(size=(4, 3))
        wavelength = rng.uniform(50, 140, size=4)
        self.wave_freq = (direction / np.linalg.norm(direction, axis=1, keepdims=True)
                          * (2 * np.pi / wavelength)[:, None]).T.astype(np.float32)  # [3, 4]
        self.wave_phase = rng.uniform(0, 2 * np.pi, 4).astype(np.float32)
        self.wave_amp = rng.normal(0, 1.6, (4, 3)).astype(np.float32)
        self.inverse_scale = 1 / scale

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """points float32 [N, 3] output voxels -> float32 [N, 3] template voxels."""
        rel = points - self.out_centre
        q = rel @ self.matrix.T
        q += self.tpl_centre
        waves = rel @ self.wave_freq
        waves += self.wave_phase
        np.sin(waves, out=waves)
        q += waves @ self.wave_amp
        return q

    def output_box(self, template: Template, margin: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box [lo, hi) in output voxels that holds the deformed template brain."""
        half = np.array(template.fractions.shape[:3], np.float32) / 2 * self.inverse_scale * 1.12 + margin
        lo = np.maximum(np.floor(self.out_centre - half), 0).astype(int)
        hi = np.minimum(np.ceil(self.out_centre + half), SHAPE).astype(int)
        return lo, hi


def sample_fractions(template: Template, q: np.ndarray) -> np.ndarray:
    """Trilinear CSF/GM/WM fractions float32 [N, 3] at template voxels q [N, 3] (0 outside)."""
    size = np.array(template.fractions.shape[:3], np.float32)
    grid = torch.from_numpy(q * (2 / (size - 1)) - 1).view(1, -1, 1, 1, 3)  # grid_sample wants (x, y, z)
    with torch.no_grad():
        out = torch.nn.functional.grid_sample(template.volume, grid, mode="bilinear", align_corners=True)
    return out[0, :, :, 0, 0].T.numpy()


def _candidate_voxels(transform: GridToTemplate, template: Template, lo, hi) -> np.ndarray:
    """Output voxels (int [N, 3], Fortran order: sorted by z, then y, then x) within about 3 mm of the
    deformed brain: a test on every second voxel."""
    step = 2
    axes = [np.arange(a, b, step, dtype=np.float32) for a, b in zip(lo, hi)]
    coarse = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    d = template.depth
    q = np.rint(transform(coarse.reshape(-1, 3)) / 2).astype(int)
    inside = np.all((q >= 0) & (q < d.shape), axis=1)
    hit = np.zeros(len(q), bool)
    hit[inside] = d[tuple(q[inside].T)] > 0
    mask = ndi.binary_dilation(hit.reshape(coarse.shape[:3]), iterations=1).T  # [z, y, x]
    full = np.repeat(np.repeat(np.repeat(mask, step, 0), step, 1), step, 2)
    full = full[: hi[2] - lo[2], : hi[1] - lo[1], : hi[0] - lo[0]]
    # Fortran order (x fastest): the order of the NIfTI volumes written and of the template that
    # grid_sample reads ([Z, Y, X]), so that both are walked through memory in sequence.
    return np.argwhere(full)[:, ::-1].astype(np.int32) + lo.astype(np.int32)


def _bias_basis(points: np.ndarray) -> np.ndarray:
    """Quadratic polynomial terms of the normalised coordinates, float32 [N, 8], for bias fields."""
    u = (points - BRATS_BRAIN_CENTRE) / np.float32(80.0)
    return np.concatenate([u, u * u * 0.5, u[:, :1] * u[:, 1:2], u[:, 1:2] * u[:, 2:3]], axis=1)


def _bias_field(rng, basis: np.ndarray) -> np.ndarray:
    """A smooth multiplicative field, 1 +- about 0.15 (each modality its own)."""
    return 1 + basis @ rng.uniform(-0.12, 0.12, basis.shape[1]).astype(np.float32)


def _vessel_field(rng, points: np.ndarray, lo) -> np.ndarray:
    """Sparse bright threads in CSF for T1ce (cortical veins, choroid plexus): values in [0, 1]."""
    coarse = ndi.gaussian_filter(rng.standard_normal((64, 64, 48)).astype(np.float32), 1.0)
    coarse /= coarse.std()
    idx = np.clip((points - lo) / 3.0, 0, np.array(coarse.shape) - 1.001).T
    v = ndi.map_coordinates(coarse, idx, order=1, output=np.float32)
    return np.clip((v - 1.4) / 0.8, 0, 1)


PURE_TISSUE = ("background", "csf", "gm", "wm")  # values of the tissue map returned with ``with_tissue``


def synth_anatomy_case(index: int, seed: int, with_tissue: bool = False, tumours=None, owner: np.ndarray | None = None,
                       resect: float = 0.0, mix: TumourMix = TumourMix()):
    """Return ({modality: int16 [240, 240, 155]}, seg uint8 with internal labels 0/1/2/4). Deterministic.

    ``resect`` > 0: the case is post-operative: the largest tumour's centre, out to ``resect`` times its
    core radius, is a resection cavity (internal label 5, `carve_cavity`); the other draws are unchanged.
    ``mix``: the kinds of tumours drawn (`TumourMix`; the default is the generator's own).

    With ``with_tissue``, also a uint8 [240, 240, 155] map of voxels that are at least 90% one template
    tissue (1 CSF, 2 GM, 3 WM; 0 elsewhere), taken before tumours are painted: for checks of contrast.
    ``tumours(rng, template, points, q) -> (plans, identities[, cavities])`` replaces the random choice of
    tumours (the follow-up generator evolves one case's tumours over time; ``cavities``: (plan, fraction)
    pairs resected after painting, `carve_cavity`); ``owner`` UInt8 [240, 240, 155] then receives each
    tumour voxel's identity (see `paint_tumours`).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 2]))
    template = load_template()
    transform = GridToTemplate(rng, template)
    lo, hi = transform.output_box(template)
    points_i = _candidate_voxels(transform, template, lo, hi)
    points = points_i.astype(np.float32)
    q = transform(points)
    cavities: list[tuple[TumourPlan, float]] = []
    if tumours is None:
        plans: list[TumourPlan] = plan_tumours(rng, template, points, q, mix=mix)
        identities = None
    else:
        plans, identities, *rest = tumours(rng, template, points, q)
        cavities = list(rest[0]) if rest else []
    if resect > 0 and plans:
        cavities.append((plans[0], resect))
    for plan in plans:  # mass effect: tissue near a tumour comes from closer to its centre
        rel = q - plan.centre_template
        r = np.sqrt(np.einsum("ij,ij->i", rel, rel)) + 1e-3
        shrunk = np.cbrt(np.maximum(r ** 3 - plan.mass_effect * plan.radius_core ** 3, 0.0))
        q = plan.centre_template + rel * (shrunk / r)[:, None]
    frac = sample_fractions(template, q)
    brain = frac.sum(1) > 0.5  # skull-stripped at the deformed brain's edge
    points_i, points, frac = points_i[brain], points[brain], frac[brain]
    frac /= np.maximum(frac.sum(1, keepdims=True), 1e-6)

    # Volumes are built in Fortran order, the order NIfTI stores: writing them needs no transposed copy.
    flat = np.ravel_multi_index(tuple(points_i.T), SHAPE, order="F")
    seg = np.zeros(SHAPE, np.uint8, order="F")
    images = {}
    values = {}
    for mod, means in TISSUE.items():
        m = np.array(means, np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
        values[mod] = frac @ m
    csf = np.flatnonzero(frac[:, 0] > 0.15)  # vessels only where there is CSF: sulci, fissures, ventricles
    values["t1ce"][csf] += _vessel_field(rng, points[csf], lo) * frac[csf, 0] * np.float32(rng.uniform(1.5, 2.5))
    paint_tumours(rng, plans, points_i, frac, values, seg, owner, identities)
    for plan, fraction in cavities:
        carve_cavity(plan, fraction, points_i, values, seg, owner)

    n = len(points)
    noise = rng.standard_normal(2 * n + 8 * 1024, dtype=np.float32)
    basis = _bias_basis(points)
    for k, mod in enumerate(TISSUE):
        v = values[mod] * _bias_field(rng, basis)
        a = noise[k * 1024: k * 1024 + n] * NOISE_SIGMA + v  # shifted windows of one draw: independent enough
        b = noise[n + k * 1024: n + k * 1024 + n] * NOISE_SIGMA
        v = np.sqrt(a * a + b * b)  # Rician magnitude
        scale = rng.uniform(350, 1400)
        vol = np.zeros(int(np.prod(SHAPE)), np.int16)
        vol[flat] = np.clip(v * scale, 1, 32000).astype(np.int16)
        images[mod] = vol.reshape(SHAPE, order="F")
    if not with_tissue:
        return images, seg
    tissue = np.zeros(int(np.prod(SHAPE)), np.uint8)
    pure = frac.max(1) > 0.9
    tissue[flat[pure]] = frac[pure].argmax(1) + 1
    return images, seg, tissue.reshape(SHAPE, order="F")
