"""NIfTI reading with validation, and writing in a reference image's geometry (atomically)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from gliomask.errors import GliomaskError
from gliomask.io.atomic import atomic_path

try:  # ISA-L's gzip: the same format, about 7 times faster to compress than zlib at level 1
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - a platform without an isal wheel
    import gzip as _gzip

AFFINE_ATOL = 1e-3  # mm; BraTS files of one case differ only by float rounding


def read_nifti(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Read a 3-D NIfTI image; returns the image and its voxels as stored (no scaling to float64)."""
    if not path.is_file():
        raise GliomaskError("file not found", path)
    zooms = _stored_zooms(path)
    if zooms is not None and any(z == 0 for z in zooms):  # nibabel would set them to 1 mm with a log line
        raise GliomaskError(f"voxel size is 0 in the header (pixdim {tuple(float(z) for z in zooms)}): "
                            "fix the header's spacing", path)
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for truncated or corrupt files
        raise GliomaskError(f"cannot read NIfTI ({type(exc).__name__}: {exc})", path) from None
    dtype = img.get_data_dtype()
    if dtype.names is not None:  # RGB / RGBA NIfTI: a colour picture, not a scan
        raise GliomaskError(f"voxels are {dtype.name} colour records ({', '.join(dtype.names)}), not one grey value "
                            "per voxel: convert the scan to grey-scale", path)
    if dtype.kind == "c":
        raise GliomaskError(f"voxels are complex ({dtype.name}): give the magnitude image", path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise GliomaskError(f"expected a 3-D image, got shape {tuple(data.shape)}", path)
    return img, data


def _stored_zooms(path: Path) -> tuple[float, ...] | None:
    """pixdim[1:4] as stored in a NIfTI-1 header, before nibabel's load-time fixes; None if unreadable."""
    try:
        with nib.openers.ImageOpener(str(path)) as fobj:
            header = nib.Nifti1Header.from_fileobj(fobj, check=False)
        return tuple(float(z) for z in header["pixdim"][1:4])
    except Exception:  # NIfTI-2, truncated or not NIfTI at all: nib.load below says what it is
        return None


def save_like(data: np.ndarray, reference: nib.Nifti1Image, path: Path, dtype=np.uint8) -> Path:
    """Write ``data`` with the reference image's affine, qform, sform and a copy of its header.

    Nothing is reoriented: ``data`` must be in the reference's voxel order ([X, Y, Z] or [X, Y, Z, K]).
    Written atomically.
    """
    data = np.asarray(data)
    if data.shape[:3] != reference.shape[:3]:
        raise GliomaskError(f"shape {data.shape} does not match reference {reference.shape[:3]}", path)
    header = reference.header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    img = nib.Nifti1Image(data.astype(dtype), reference.affine, header=header)
    ref_hdr = reference.header
    img.header.set_qform(ref_hdr.get_qform(), code=int(ref_hdr["qform_code"]))
    img.header.set_sform(ref_hdr.get_sform(), code=int(ref_hdr["sform_code"]))
    with atomic_path(Path(path)) as tmp:
        write_image(img, tmp)
    return Path(path)


def write_image(img: nib.Nifti1Image, path: Path) -> None:
    """Write a NIfTI-1 image as one file, gzipped (fast level, no timestamp) when the name ends in .gz.

    Not atomic by itself: callers write to a temporary name (:func:`gliomask.io.atomic.atomic_path`) or
    into a folder that is renamed when complete.
    """
    raw = img.to_bytes()
    if str(path).endswith(".gz"):
        raw = _gzip.compress(raw, compresslevel=1, mtime=0)
    Path(path).write_bytes(raw)


def spacing_of(affine: np.ndarray) -> np.ndarray:
    """Voxel size in mm along each voxel axis (column norms of the affine; the header's zooms can
    disagree with an affine that was edited without them)."""
    return np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
