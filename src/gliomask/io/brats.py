"""BraTS case discovery (2018-2021 and 2023+ naming, or a manifest CSV) and validated loading.

Label maps are checked against their edition's label set and converted to the internal convention
on load (`gliomask.labels`).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from gliomask.errors import GliomaskError
from gliomask.io.discovery_hints import why_no_case
from gliomask.io.nifti import AFFINE_ATOL, read_nifti
from gliomask.labels import CAVITY_2024, EDITION_LABELS, to_internal, unknown_labels

CANONICAL_MODALITIES = ("t1", "t1ce", "t2", "flair")

# Per naming convention: the separator and the file suffix of each canonical modality (label sets:
# `gliomask.labels.EDITION_LABELS`).
CONVENTIONS = {
    "brats2019": {
        "sep": "_",
        "suffix": {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair"},
    },
    "brats2023": {
        "sep": "-",
        "suffix": {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"},
    },
}
MODALITY_ALIASES = {
    "t1": "t1", "t1n": "t1", "t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce",
    "t2": "t2", "t2w": "t2", "flair": "flair", "t2f": "flair",
    "t1w": "t1", "t1-weighted": "t1", "t2-weighted": "t2",  # names in nnU-Net / MSD dataset.json files
}
NIFTI_SUFFIXES = (".nii.gz", ".nii")
# 255-byte file names, less the longest output suffix (_unc_enhance.nii.gz) and a temporary name's extras
MAX_CASE_ID_BYTES = 200


def parse_modalities(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"flair,t1ce"`` -> ``("flair", "t1ce")``; 2023 names are accepted as aliases."""
    if spec is None:
        return CANONICAL_MODALITIES
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        key = item.strip().lower()
        if key not in MODALITY_ALIASES:
            raise GliomaskError(f"unknown modality {item!r}; choose from {', '.join(CANONICAL_MODALITIES)}")
        if MODALITY_ALIASES[key] in out:
            raise GliomaskError(f"modality {item!r} given twice")
        out.append(MODALITY_ALIASES[key])
    if not out:
        raise GliomaskError("no modality given")
    return tuple(out)


@dataclass
class Case:
    """One patient: where its files are and which naming convention they follow."""

    case_id: str
    images: dict[str, Path]
    seg: Path | None
    convention: str = "brats2019"
    group: str | None = None  # HGG / LGG where the folder says so
    patient: str | None = None  # a manifest's ``patient`` column; else :func:`patient_of` reads the id

    @property
    def folder(self) -> Path | None:
        """The folder holding the case's files (the first one found)."""
        paths = [*self.images.values(), *([self.seg] if self.seg else [])]
        return Path(paths[0]).parent if paths else None

    def expected_path(self, modality: str) -> Path:
        conv = CONVENTIONS[self.convention]
        name = f"{self.case_id}{conv['sep']}{conv['suffix'][modality]}.nii.gz"
        return (self.folder / name) if self.folder else Path(name)

    def missing(self, modalities: tuple[str, ...]) -> list[str]:
        return [m for m in modalities if m not in self.images or not Path(self.images[m]).is_file()]

    def require(self, modalities: tuple[str, ...]) -> None:
        for mod in self.missing(modalities):
            raise GliomaskError(f"missing modality {mod} for case {self.case_id}", self.images.get(mod) or self.expected_path(mod))


@dataclass
class LoadedCase:
    """Voxels of one case. ``images`` FloatTensor-like float32 [C, X, Y, Z] in the requested order, a
    modality the case lacks all zero (``allow_missing``); ``seg`` uint8 [X, Y, Z] in the internal (2019)
    convention, or None."""

    case_id: str
    modalities: tuple[str, ...]
    images: np.ndarray
    seg: np.ndarray | None
    reference: nib.Nifti1Image = field(repr=False)
    available: tuple[str, ...] | None = None  # the modalities read from files; the others are zero (None: all)

    @property
    def present(self) -> tuple[str, ...]:
        """The modalities that came from files, in ``modalities`` order."""
        return self.modalities if self.available is None else tuple(m for m in self.modalities if m in self.available)

    @property
    def affine(self) -> np.ndarray:
        return self.reference.affine

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.reference.header.get_zooms()[:3])


def _find_file(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{suffix}" for suffix in NIFTI_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:  # which one is current cannot be guessed: refuse rather than pick one silently
        raise GliomaskError(f"both {found[0].name} and {found[1].name} exist; keep one", folder)
    return found[0] if found else None


_NNUNET_FILE = re.compile(r"^(.+)_(\d{4})\.nii(\.gz)?$")


def _nnunet_cases(folder: Path) -> list[Case] | None:
    """nnU-Net raw layout: ``<case>_0000.nii.gz`` ... per channel in ``folder`` (imagesTr / imagesTs), the
    channel names in ``dataset.json`` beside it or one level up (``channel_names`` or MSD ``modality``).
    None when the folder is not laid out so."""
    files = [p for p in folder.iterdir() if p.is_file() and _NNUNET_FILE.match(p.name)] if folder.is_dir() else []
    if not files:
        return None
    spec = next((d / "dataset.json" for d in (folder, folder.parent) if (d / "dataset.json").is_file()), None)
    if spec is None:
        raise GliomaskError("nnU-Net-style files (<case>_0000.nii.gz) need the dataset.json that names the channels "
                            "(beside them or one folder up)", folder)
    try:
        meta = json.loads(spec.read_text())
        channels = meta.get("channel_names") or meta.get("modality")
        names = {int(k): MODALITY_ALIASES[str(v).strip().lower()] for k, v in channels.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise GliomaskError(f"cannot read the channel names ({type(exc).__name__}: {exc})", spec) from None
    except KeyError as exc:
        raise GliomaskError(f"unknown channel name {exc.args[0]!r}; expected one of "
                            f"{', '.join(sorted(MODALITY_ALIASES))}", spec) from None
    by_case: dict[str, dict[str, Path]] = {}
    for path in sorted(files):
        match = _NNUNET_FILE.match(path.name)
        channel = int(match.group(2))
        if channel not in names:
            raise GliomaskError(f"channel {channel:04d} is not named in {spec.name}", path)
        images = by_case.setdefault(check_case_id(match.group(1), path), {})
        if names[channel] in images:
            raise GliomaskError(f"two files for channel {channel:04d} of case {match.group(1)}", path)
        images[names[channel]] = path
    labels = folder.parent / ("labelsTr" if folder.name == "imagesTr" else "labelsTs")
    return [Case(cid, images, _find_file(labels, cid) if labels.is_dir() else None, "brats2019")
            for cid, images in by_case.items()]


def case_from_files(files: dict[str, Path], case_id: str | None = None, convention: str = "brats2019") -> Case:
    """One case from explicit files {modality: path} (``predict --t1 ... --flair ...``)."""
    if not files:
        raise GliomaskError("no image file given")
    first = Path(next(iter(files.values())))
    name = first.name
    for suffix in NIFTI_SUFFIXES:
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    suffixes = "|".join(sorted({s for conv in CONVENTIONS.values() for s in conv["suffix"].values()}, key=len, reverse=True))
    case_id = check_case_id(case_id or re.sub(rf"[_-]({suffixes}|0000)$", "", name), first)
    for mod, path in files.items():
        if not Path(path).is_file():
            raise GliomaskError(f"{mod} file not found", path)
    return Case(case_id, {m: Path(p) for m, p in files.items()}, None, convention)


def _named_case(folder: Path, case_id: str, convention: str) -> Case | None:
    """The files ``<case_id><sep><suffix>`` of ``convention`` in ``folder`` as a Case; None when there are none."""
    conv = CONVENTIONS[convention]
    images = {mod: _find_file(folder, f"{case_id}{conv['sep']}{suf}") for mod, suf in conv["suffix"].items()}
    seg = _find_file(folder, f"{case_id}{conv['sep']}seg")
    if not any(images.values()) and seg is None:
        return None
    check_case_id(case_id, folder)
    return Case(case_id, {m: p for m, p in images.items() if p is not None}, seg, convention)


def _case_from_folder(folder: Path) -> Case | None:
    """A folder is a case when it holds ``<folder name>_<modality>`` or ``-<modality>`` NIfTI files."""
    for name in CONVENTIONS:
        case = _named_case(folder, folder.name, name)
        if case is not None:
            case.group = folder.parent.name if folder.parent.name in ("HGG", "LGG") else None
            return case
    return None


def _flat_cases(folder: Path) -> list[Case]:
    """Several cases' files side by side in one folder (``A_t1.nii.gz A_flair.nii.gz B_t1.nii.gz ...``,
    or 2023 names): grouped by the id before the modality suffix."""
    cases = []
    for name, conv in CONVENTIONS.items():
        suffixes = "|".join(sorted([*conv["suffix"].values(), "seg"], key=len, reverse=True))
        pattern = re.compile(rf"^(.+?){re.escape(conv['sep'])}({suffixes})\.nii(\.gz)?$")
        ids = sorted({m.group(1) for f in folder.iterdir() if f.is_file() and (m := pattern.match(f.name))})
        cases += [_named_case(folder, check_case_id(case_id, folder), name) for case_id in ids]
    return cases


def _cases_from_manifest(csv_path: Path) -> list[Case]:
    try:
        with open(csv_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GliomaskError(f"cannot read manifest ({exc})", csv_path) from None
    if rows:  # a spreadsheet's UTF-8 byte-order mark would otherwise hide the first column's name
        rows = [{(k or "").lstrip("\ufeff").strip(): v for k, v in row.items()} for row in rows]
    if not rows or "case" not in rows[0]:
        raise GliomaskError("manifest needs a 'case' column and one row per case", csv_path)
    cases = []
    for row in rows:
        images: dict[str, Path] = {}
        for column, value in row.items():
            key = (column or "").strip().lower()
            if key in MODALITY_ALIASES and value:
                images[MODALITY_ALIASES[key]] = (csv_path.parent / value.strip()).resolve()
        seg = row.get("seg") or None
        labels = (row.get("labels") or "brats2019").strip().replace("brats2024", "brats2023")  # 2024: 2023 names
        if labels not in CONVENTIONS:
            raise GliomaskError(f"unknown label convention {labels!r} for case {row['case']}", csv_path)
        patient = (row.get("patient") or "").strip() or None  # timepoints of one patient share a fold
        cases.append(Case(check_case_id(row["case"].strip(), csv_path), images,
                          (csv_path.parent / seg.strip()).resolve() if seg else None, labels, patient=patient))
    return cases


_TIMEPOINT = re.compile(r"^(BraTS-[A-Za-z]+-\d+)-\d+$")


def patient_of(case_id: str) -> str:
    """The patient a case belongs to: BraTS 2023+ ids name patient and timepoint
    (``BraTS-GLI-00123-001`` -> ``BraTS-GLI-00123``); other ids are one case per patient."""
    match = _TIMEPOINT.match(case_id)
    return match.group(1) if match else case_id


def check_case_id(case_id: str, source: Path) -> str:
    """A case id becomes part of file names (``<out>/<case>_seg.nii.gz``): it must not hold a path
    separator, be ``.`` or ``..``, be empty or start with ``-``, so that no output leaves its folder; nor
    hold control characters (a newline in a file name), nor be so long that ``<case>_unc_enhance.nii.gz``
    and its temporary name pass the file system's 255 bytes (checked before any work starts)."""
    if (not case_id or case_id in (".", "..") or "/" in case_id or "\\" in case_id or "\0" in case_id
            or case_id.startswith("-")):
        raise GliomaskError(f"case id {case_id!r} cannot be a file name (no path separators, '..' or leading '-')", source)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in case_id):
        raise GliomaskError(f"case id {case_id!r} holds a control character (newline, tab, ...)", source)
    if len(case_id.encode()) > MAX_CASE_ID_BYTES:
        raise GliomaskError(f"case id of {len(case_id.encode())} bytes is too long for its output file names "
                            f"(at most {MAX_CASE_ID_BYTES})", source)
    return case_id


def discover_cases(root: str | Path) -> list[Case]:
    """Find cases under ``root``: a BraTS folder (case folders, perhaps under HGG/ LGG/), one case folder,
    an nnU-Net images folder, a folder of several cases' files side by side, or a manifest CSV.

    Cases come back sorted by id; duplicated ids are an error.
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        cases = _cases_from_manifest(root)
    elif root.is_dir():
        single = _case_from_folder(root)
        nnunet = _nnunet_cases(root) if single is None else None
        if single is not None:
            cases = [single]
        elif nnunet is not None:
            cases = nnunet
        else:
            cases = []
            for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
                if len(folder.relative_to(root).parts) > 3:
                    continue
                case = _case_from_folder(folder)
                if case is not None:
                    cases.append(case)
            if not cases:  # no case folders: perhaps every case's files side by side
                cases = _flat_cases(root)
    elif not root.exists():
        raise GliomaskError("no such file or folder", root)
    else:
        raise GliomaskError("expected a BraTS folder, a case folder or a manifest .csv", root)
    if not cases:
        raise GliomaskError("no BraTS cases found (expected <case>/<case>_flair.nii.gz or <case>-t2f.nii.gz)"
                            + why_no_case(root, NIFTI_SUFFIXES), root)
    ids = [c.case_id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise GliomaskError(f"case ids appear twice: {', '.join(dupes)}", root)
    return sorted(cases, key=lambda c: c.case_id)


def select_cases(cases, case_ids: list[str] | None, root):
    """Keep the cases named in ``case_ids`` (all when None); a named case that is absent is an error."""
    if case_ids is None:
        return cases
    found = {c.case_id for c in cases}
    absent = [c for c in case_ids if c not in found]
    if absent:
        raise GliomaskError(f"cases not found: {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}", root)
    return [c for c in cases if c.case_id in set(case_ids)]


def convert_labels(seg: np.ndarray, convention: str, path: Path) -> np.ndarray:
    """Check a label map against its edition's label set; return it in the internal convention (2023-style
    names: a 4 is BraTS 2024's resection cavity, see `labels.label_edition`)."""
    if not np.issubdtype(seg.dtype, np.integer):
        if not np.all(np.isfinite(seg)) or np.any(seg != np.round(seg)):
            raise GliomaskError("segmentation holds non-integer values", path)
    if convention == "brats2023" and np.any(seg == CAVITY_2024):
        convention = "brats2024"
    bad = unknown_labels(seg, convention)
    if bad:
        raise GliomaskError(
            f"unknown label(s) {bad} for {convention} naming (allowed {list(EDITION_LABELS[convention])})", path
        )
    return to_internal(seg, convention)


def load_case(case: Case, modalities: tuple[str, ...] = CANONICAL_MODALITIES, *, with_seg: bool = True,
              allow_missing: bool = False) -> LoadedCase:
    """Load and validate a case: shapes and affines agree, images are finite 3-D, labels are valid.

    With ``allow_missing`` a modality the case lacks becomes an all-zero channel (a model trained with
    modality flags reads it as absent); at least one must be there.
    """
    missing = case.missing(modalities) if allow_missing else []
    if len(missing) == len(modalities):
        case.require(modalities[:1])
    case.require(tuple(m for m in modalities if m not in missing))
    arrays = {}
    reference: nib.Nifti1Image | None = None
    ref_path: Path | None = None
    for mod in (m for m in modalities if m not in missing):
        path = Path(case.images[mod])
        img, data = read_nifti(path)
        if reference is None:
            reference, ref_path = img, path
        else:
            check_same_grid(img, data.shape, reference, path, ref_path)
        data = data.astype(np.float32, copy=False)
        if not np.all(np.isfinite(data)):
            raise GliomaskError("image holds NaN or infinite values", path)
        arrays[mod] = data
    seg = None
    if with_seg and case.seg is not None:
        img, data = read_nifti(Path(case.seg))
        check_same_grid(img, data.shape, reference, Path(case.seg), ref_path)
        seg = convert_labels(data, case.convention, Path(case.seg))
    shape = next(iter(arrays.values())).shape
    images = np.stack([arrays[m] if m in arrays else np.zeros(shape, np.float32) for m in modalities])
    available = tuple(m for m in modalities if m in arrays) if missing else None
    return LoadedCase(case.case_id, tuple(modalities), images, seg, reference, available)


def check_same_grid(img, shape, reference, path: Path, ref_path: Path, ref_name: str | None = None) -> None:
    """``img`` (voxels of ``shape``) must share the reference image's shape and affine (within AFFINE_ATOL)."""
    ref_name = ref_name or ref_path.name
    if tuple(shape) != tuple(reference.shape[:3]):
        raise GliomaskError(f"shape {tuple(shape)} differs from {ref_name} {tuple(reference.shape[:3])}", path)
    if not np.allclose(img.affine, reference.affine, atol=AFFINE_ATOL):
        raise GliomaskError(f"affine differs from {ref_name}", path)


def read_labels(path: Path, convention: str):
    """Read a label map and convert it to the internal convention; returns (image, UInt8 labels)."""
    img, data = read_nifti(Path(path))
    return img, convert_labels(data, convention, Path(path))


def check_output_folder(out: Path, cases) -> None:
    """Outputs never overwrite an input: refuse an output path that is an input file, or a folder that
    holds one (``predict -o CASE`` would replace the case's ground truth ``<case>_seg.nii.gz``;
    ``evaluate -o GT`` would write its report among the ground truth)."""
    if out.exists() and not out.is_dir():
        raise GliomaskError("the output exists and is not a folder", out)
    target = out.resolve()
    for case in cases:
        for path in [*case.images.values(), *([case.seg] if case.seg else [])]:
            path = Path(path).resolve()
            if target in (path, path.parent):
                raise GliomaskError(f"the output folder holds input files of case {case.case_id} ({path.name}); "
                                    "choose another -o", out)

