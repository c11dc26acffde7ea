"""Rigid registration of a later scan onto the first (SimpleITK, Mattes mutual information), and label
maps carried onto the first scan's grid.

Images are read by SimpleITK itself (its LPS physical frame); a label map travels with the scan it was
predicted from (same voxel grid). Quality: the normalised cross-correlation between the first scan and
the registered later scan inside the first scan's brain (non-zero voxels), before (headers only) and
after registration; below ``MIN_CORRELATION`` the registration is called failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliomask.errors import GliomaskError

MIN_CORRELATION = 0.5


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:
        raise GliomaskError("the timepoints lie on different grids and registering them needs SimpleITK: "
                            "pip install 'gliomask[followup]'") from None
    return sitk


def _read(path: Path):
    sitk = _sitk()
    try:
        return sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise GliomaskError(f"SimpleITK cannot read it ({str(exc).strip().splitlines()[-1]})", path) from None


def _correlation(fixed, moving_on_fixed) -> float:
    sitk = _sitk()
    a = sitk.GetArrayViewFromImage(fixed)
    b = sitk.GetArrayViewFromImage(moving_on_fixed)
    inside = a > 0
    if inside.sum() < 100:
        return 0.0
    x, y = a[inside].astype(np.float64), b[inside].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def register_rigid(fixed_path: Path, moving_path: Path, *, threads: int | None = None, seed: int = 0):
    """Rigid transform (SimpleITK Euler3D, fixed -> moving physical points) that maps ``moving_path``'s scan
    onto ``fixed_path``'s, and a report: rotation (degrees), translation (mm), the metric, the
    correlations before and after. A registration that fails raises `GliomaskError` naming the scans."""
    sitk = _sitk()
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    fixed, moving = _read(fixed_path), _read(moving_path)
    identity = sitk.Euler3DTransform()
    before = _correlation(fixed, sitk.Resample(moving, fixed, identity, sitk.sitkLinear, 0.0))
    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.05, seed)
    reg.SetMetricFixedMask(fixed > 0)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4, numberOfIterations=200,
                                                 gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    try:
        transform = reg.Execute(fixed, moving)
    except RuntimeError as exc:
        raise GliomaskError(f"registration onto {Path(fixed_path).name} failed "
                            f"({str(exc).strip().splitlines()[-1]})", moving_path) from None
    after = _correlation(fixed, sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0))
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(transform).GetNthTransform(0)) \
        if transform.GetName() == "CompositeTransform" else sitk.Euler3DTransform(transform)
    report = {"method": "rigid (Euler 3-D), Mattes mutual information, SimpleITK",
              "fixed": str(fixed_path), "moving": str(moving_path),
              "rotation_deg": [round(float(np.degrees(a)), 2) for a in (euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ())],
              "translation_mm_lps": [round(float(v), 2) for v in euler.GetTranslation()],
              "centre_mm_lps": [round(float(v), 2) for v in euler.GetCenter()],
              "metric": round(float(reg.GetMetricValue()), 4),
              "correlation_headers_only": round(before, 3), "correlation_registered": round(after, 3)}
    if after < MIN_CORRELATION:
        raise GliomaskError(f"registration onto {Path(fixed_path).name} failed: correlation {after:.2f} after "
                            f"registration (at least {MIN_CORRELATION} expected; {before:.2f} from the headers alone)",
                            moving_path)
    return euler, report


def labels_onto(labels: np.ndarray, labels_grid: Path, fixed_grid: Path, transform=None) -> np.ndarray:
    """UInt8 [X, Y, Z] internal labels on the voxel grid of the NIfTI file ``labels_grid`` -> the same on
    ``fixed_grid``'s, through ``transform`` (None: the headers' scanner frames). Each nested region (WT, TC,
    ET, and the resection cavity of BraTS 2024) is resampled linearly and kept where it covers at least
    half a voxel: smoother than nearest neighbour, which leaves one-voxel fragments along thin parts."""
    from gliomask.labels import CAVITY_REGION, REGIONS, RESECTION_CAVITY, labels_from_regions, regions_from_labels

    sitk = _sitk()
    moving = _read(labels_grid)
    fixed = _read(fixed_grid)
    regions = []
    for region in regions_from_labels(np.asarray(labels), (*REGIONS, CAVITY_REGION)):
        img = sitk.GetImageFromArray(np.ascontiguousarray(region.transpose(2, 1, 0).astype(np.float32)))
        img.CopyInformation(moving)
        out = sitk.Resample(img, fixed, transform or sitk.Euler3DTransform(), sitk.sitkLinear, 0.0)
        regions.append(sitk.GetArrayViewFromImage(out).transpose(2, 1, 0) >= 0.5)
    regions = np.stack(regions)
    regions[1] &= regions[0]  # nested, as the labels were
    regions[2] &= regions[1]
    out = labels_from_regions(regions[:3])
    out[regions[3] & (out == 0)] = RESECTION_CAVITY  # the cavity is not tumour: it never overwrites a tumour label
    return out


def image_onto(path: Path, fixed_grid: Path, transform=None) -> np.ndarray:
    """Float32 [X, Y, Z]: the scan ``path`` resampled (linear) onto ``fixed_grid``'s voxels."""
    sitk = _sitk()
    out = sitk.Resample(_read(path), _read(fixed_grid), transform or sitk.Euler3DTransform(), sitk.sitkLinear, 0.0)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)
