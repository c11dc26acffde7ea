"""Gliomas for the template-based synthetic cases: where they grow, what they look like, which labels.

A tumour is seeded in white matter away from the brain's surface. Its core is a noise-perturbed
ellipsoid; in high-grade (enhancing) tumours an enhancing rim of varying thickness and completeness
surrounds necrosis, and the parts of the rim that do not enhance are non-enhancing core; low-grade
tumours have a non-enhancing core only. Oedema spreads further along white matter than through cortex
and stops at CSF (ventricles, sulci); only the oedema connected to the core is kept. The caller pushes
tissue away from each core (mass effect) using ``TumourPlan.centre_template`` and ``radius_core``.
Intensities are given in units of the modality's white matter and mixed in with blurred (partial
volume) weights, so boundaries are soft in the images and sharp in the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from gliomask.errors import GliomaskError
from gliomask.labels import ENHANCING, NECROTIC, OEDEMA, RESECTION_CAVITY

# Tumour compartments in units of each modality's white matter.
OEDEMA_VALUE = {"t1": 0.72, "t1ce": 0.74, "t2": 2.0, "flair": 1.75}
NECROSIS_VALUE = {"t1": 0.45, "t1ce": 0.58, "t2": 2.4, "flair": 1.5}
NON_ENHANCING_VALUE = {"t1": 0.62, "t1ce": 0.75, "t2": 1.9, "flair": 1.8}
ENHANCING_VALUE = {"t1": 0.80, "t1ce": 1.65, "t2": 1.5, "flair": 1.55}
# A resection cavity holds fluid: dark on T1, T1ce and FLAIR (like CSF, a little brighter: protein,
# blood products), bright on T2.
CAVITY_VALUE = {"t1": 0.36, "t1ce": 0.48, "t2": 2.5, "flair": 0.42}


@dataclass(frozen=True)
class TumourPlan:
    centre: np.ndarray  # output voxel, int [3]
    centre_template: np.ndarray  # template voxel, float32 [3]
    radius_core: float  # mm
    radius_oedema: float  # mm
    axes: np.ndarray  # per-axis stretch of the ellipsoids, float32 [3]
    enhancing: bool
    mass_effect: float  # fraction of the core's volume that displaced tissue (0..1)


@dataclass(frozen=True)
class TumourMix:
    """What kinds of tumours `plan_tumours` draws (the defaults are the generator's own mix).

    ``enhancing_fraction``: share of cases whose tumours have an enhancing rim (the rest: a
    non-enhancing core only, LGG-like). ``core_radius_mm``: range of the main tumour's core radius
    (satellites get 0.45-0.75 of a draw from it). ``oedema_ratio``: range of oedema radius / core radius
    (near 1: a core-dominated tumour with little oedema). Changing the mix changes no other draw of a case.
    """

    enhancing_fraction: float = 0.75
    core_radius_mm: tuple[float, float] = (8.0, 25.0)
    oedema_ratio: tuple[float, float] = (1.4, 2.6)

    def __post_init__(self):
        if not 0.0 <= self.enhancing_fraction <= 1.0:
            raise GliomaskError(f"enhancing fraction {self.enhancing_fraction} is not within 0-1")
        for name, (lo, hi), least in (("core radius", self.core_radius_mm, 2.0),
                                      ("oedema ratio", self.oedema_ratio, 1.0)):
            if not least <= lo <= hi:
                raise GliomaskError(f"{name} range {lo}-{hi} must be ordered and at least {least:g}")

    @property
    def is_default(self) -> bool:
        return self == TumourMix()


def smooth_noise(rng, u, v, w, terms=3, freq=(1.5, 4.0)):
    """A sum of random low-frequency plane waves evaluated on broadcast grids, in [-1, 1]."""
    total = np.float32(0.0)
    for _ in range(terms):
        f = rng.uniform(*freq, size=3) * rng.choice([-1, 1], size=3)
        total = total + np.sin(f[0] * u + f[1] * v + f[2] * w + rng.uniform(0, 2 * np.pi))
    return (total / terms).astype(np.float32)


def coarse_noise(rng, u, v, w, terms=3, freq=(1.5, 4.0)):
    """``smooth_noise`` evaluated on every second voxel and repeated: 8 times cheaper, for slow fields."""
    shape = (u.shape[0], v.shape[1], w.shape[2])
    n = smooth_noise(rng, u[::2], v[:, ::2], w[:, :, ::2], terms, freq)
    n = np.repeat(np.repeat(np.repeat(n, 2, 0), 2, 1), 2, 2)
    return n[: shape[0], : shape[1], : shape[2]]


def plan_tumours(rng, template, points: np.ndarray, q: np.ndarray, count: int | None = None,
                 enhancing: bool | None = None, mix: TumourMix = TumourMix()) -> list[TumourPlan]:
    """Choose 0-3 tumours (or ``count``): centres in deep white matter (template WM > 0.7), apart from
    each other. ``count`` and ``enhancing`` force what is otherwise drawn (the random draws are made
    either way, so the rest of a case does not change); ``mix`` sets the kinds drawn (`TumourMix`)."""
    drawn = int(rng.choice(4, p=[0.10, 0.68, 0.16, 0.06]))
    count = drawn if count is None else count
    # LGG-like cases have a non-enhancing core only
    drawn_enhancing = bool(rng.random() < mix.enhancing_fraction)
    enhancing = drawn_enhancing if enhancing is None else enhancing
    if count == 0:
        return []
    pick = rng.choice(len(points), size=min(4000, len(points)), replace=False)
    qi = np.rint(q[pick]).astype(int)
    qi = np.clip(qi, 0, np.array(template.fractions.shape[:3]) - 1)
    wm = template.fractions[qi[:, 0], qi[:, 1], qi[:, 2], 2]
    depth = template.depth[tuple(np.minimum(qi // 2, np.array(template.depth.shape) - 1).T)]
    plans: list[TumourPlan] = []
    for k in range(count):
        scale = 1.0 if k == 0 else rng.uniform(0.45, 0.75)  # satellites are smaller
        r_core = float(rng.uniform(*mix.core_radius_mm) * scale)
        r_oed = float(min(r_core * rng.uniform(*mix.oedema_ratio), 45.0))
        ok = (wm > 0.7) & (depth > r_core * 0.8 + 6)
        for p in plans:
            ok &= np.linalg.norm(points[pick] - p.centre, axis=1) > 0.6 * (p.radius_oedema + r_oed)
        if not ok.any():
            break
        i = pick[rng.choice(np.flatnonzero(ok))]
        plans.append(TumourPlan(centre=points[i].astype(int), centre_template=q[i].copy(), radius_core=r_core,
                                radius_oedema=r_oed, axes=rng.uniform(0.8, 1.25, 3).astype(np.float32),
                                enhancing=enhancing, mass_effect=float(rng.uniform(0.2, 0.6))))
    return plans


def _mix(values, weights, targets, rng_scale, sel):
    """values[m][sel] += weights * (target_m - values[m][sel]), only where a weight is not ~0."""
    touched = weights > 1e-3
    idx, w = sel[touched], weights[touched]
    for mod, v in values.items():
        t = np.float32(targets[mod] * rng_scale[mod])
        v[idx] += w * (t - v[idx])


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float mask, computed only around its non-zero part (cores are small)."""
    out = np.zeros(mask.shape, np.float32)
    nz = np.nonzero(mask)
    if len(nz[0]) == 0:
        return out
    pad = int(np.ceil(4 * sigma)) + 1
    box = tuple(slice(max(int(a.min()) - pad, 0), int(a.max()) + pad + 1) for a in nz)
    out[box] = ndi.gaussian_filter(mask[box].astype(np.float32), sigma)
    return out


def _plan_box(centre, half, points_i, shape):
    """(lo, hi, sel, local): the box ``centre +- half`` clipped to ``shape``, the indices of the brain
    points (``points_i``, sorted by z) inside it, and their coordinates in the box."""
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half + 1, shape)
    first, stop = np.searchsorted(points_i[:, 2], [lo[2], hi[2]])  # points_i is sorted by z: one run
    run = points_i[first:stop, :2]
    sel = first + np.flatnonzero(np.all((run >= lo[:2]) & (run < hi[:2]), axis=1))
    return lo, hi, sel, tuple((points_i[sel] - lo).T)


def carve_cavity(plan: TumourPlan, fraction: float, points_i, values, seg, owner: np.ndarray | None = None) -> None:
    """Resect a painted tumour: inside the ellipsoid of ``fraction * radius_core`` along the plan's axes
    (brain voxels only) the labels become the resection cavity and the intensities fluid; the tumour
    left around it (enhancing rim, non-enhancing core, oedema) stays as painted, as residual tumour and
    surrounding FLAIR hyperintensity do after surgery. No random draws: the rest of a case is unchanged.
    ``owner`` (optional) loses the cavity's voxels: a cavity is no tumour's."""
    half = np.ceil(fraction * plan.radius_core * plan.axes).astype(int) + 3
    lo, hi, sel, local = _plan_box(plan.centre, half, points_i, seg.shape)
    shape = tuple(int(b - a) for a, b in zip(lo, hi))
    brain = np.zeros(shape, bool)
    brain[local] = True
    g = [(np.arange(a, b, dtype=np.float32) - c) / s for a, b, c, s in zip(lo, hi, plan.centre, plan.axes)]
    r = np.sqrt(g[0][:, None, None] ** 2 + g[1][None, :, None] ** 2 + g[2][None, None, :] ** 2)
    cavity = (r < fraction * plan.radius_core) & brain
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    seg[box][cavity] = RESECTION_CAVITY
    if owner is not None:
        owner[box][cavity] = 0
    _mix(values, np.clip(_blur(cavity.astype(np.float32), 0.7), 0, 1)[local], CAVITY_VALUE, dict.fromkeys(values, 1.0), sel)


def paint_tumours(rng, plans, points_i, frac, values, seg, owner: np.ndarray | None = None,
                  identities: list[int] | None = None) -> None:
    """Write labels into ``seg`` (full grid) and mix tumour intensities into ``values`` (per brain voxel).

    points_i int [N, 3] brain voxels in Fortran order (sorted by z, then y, then x); frac float32 [N, 3] CSF/GM/WM;
    values {modality: float32 [N]}. ``owner`` UInt8 [X, Y, Z] (optional) receives, where a plan paints
    tumour, its identity (``identities[k]``, default k + 1): which tumour each labelled voxel belongs to.
    """
    for k, plan in enumerate(plans):
        # Oedema reaches r < radius_oedema / (1 - 0.25) along each stretched axis (see ``re`` below).
        half = np.ceil(plan.radius_oedema / 0.75 * plan.axes).astype(int) + 3
        lo, hi, sel, local = _plan_box(plan.centre, half, points_i, seg.shape)
        shape = tuple(int(b - a) for a, b in zip(lo, hi))
        brain = np.zeros(shape, bool)
        brain[local] = True
        wm = np.zeros(shape, np.float32)
        wm[local] = frac[sel, 2]
        csf = np.zeros(shape, np.float32)
        csf[local] = frac[sel, 0]

        g = [(np.arange(a, b, dtype=np.float32) - c) / s for a, b, c, s in zip(lo, hi, plan.centre, plan.axes)]
        u, v, w = g[0][:, None, None], g[1][None, :, None], g[2][None, None, :]
        r = np.sqrt(u * u + v * v + w * w)
        k_c, k_e = 1 / plan.radius_core, 1 / plan.radius_oedema
        rc = r * k_c * (1 + 0.3 * coarse_noise(rng, u * k_c, v * k_c, w * k_c, freq=(1.0, 3.0))
                        + 0.12 * coarse_noise(rng, u * k_c, v * k_c, w * k_c, freq=(3.0, 7.0)))
        re = r * k_e * (1 + 0.25 * coarse_noise(rng, u * k_e, v * k_e, w * k_e, freq=(1.5, 4.0)))
        core = (rc < 1) & brain
        # vasogenic oedema spares the cortex: next to the core it may cross mixed tissue, not pure grey matter
        oedema = (re < 1) & brain & ((wm > 0.45) | ((rc < 1.25) & (wm > 0.15))) & (csf < 0.6)
        parts, _ = ndi.label(oedema | core)
        keep = np.unique(parts[core])
        oedema = np.isin(parts, keep[keep > 0]) & ~core
        if plan.enhancing:
            inner = rng.uniform(0.3, 0.8) * (1 + 0.4 * coarse_noise(rng, u * k_c, v * k_c, w * k_c, freq=(1.5, 4.5)))
            necrosis = core & (rc < inner)
            rim = core & ~necrosis
            gaps = coarse_noise(rng, u * k_c, v * k_c, w * k_c, terms=2, freq=(1.5, 3.5))
            enh = rim & (gaps > -rng.uniform(0.2, 1.2))
        else:
            enh = np.zeros_like(core)

        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        sub = seg[box]
        sub[oedema & (sub == 0)] = OEDEMA
        sub[core & ~enh] = NECROTIC
        sub[enh] = ENHANCING
        if owner is not None:
            mine = (oedema & (owner[box] == 0)) | core
            owner[box][mine] = identities[k] if identities else k + 1

        jitter = {m: float(rng.uniform(0.85, 1.15)) for m in values}
        texture = 1 + 0.1 * coarse_noise(rng, u / 6, v / 6, w / 6, freq=(1.0, 3.0))
        # Oedema fades towards its edge, where experts still label it: the faint rim is tumour too.
        taper = np.clip((1 - re) / 0.25, rng.uniform(0.45, 0.65), 1.0)
        w_wt = _blur(np.where(core, np.float32(1.0), oedema * taper), 1.2)[local]
        _mix(values, w_wt, OEDEMA_VALUE, jitter, sel)
        w_core = _blur(core * texture, 0.7)[local]
        _mix(values, np.clip(w_core, 0, 1), NECROSIS_VALUE if plan.enhancing else NON_ENHANCING_VALUE,
             {m: float(rng.uniform(0.75, 1.25)) for m in values}, sel)
        if plan.enhancing:
            w_rim = _blur(rim & ~enh, 0.7)[local]
            _mix(values, w_rim, NON_ENHANCING_VALUE, jitter, sel)
            w_enh = _blur(enh * texture, 0.7)[local]
            enh_scale = {m: float(rng.uniform(0.8, 1.35)) for m in values}
            _mix(values, np.clip(w_enh, 0, 1), ENHANCING_VALUE, enh_scale, sel)
