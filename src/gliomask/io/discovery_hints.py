"""What a folder holds when no BraTS case was found in it, for the one-line error of discovery."""

from __future__ import annotations

from pathlib import Path


def why_no_case(root: Path, suffixes: tuple[str, ...]) -> str:
    """What was found instead of cases, for the one-line error: upper-case suffixes, or NIfTI files whose
    names do not follow their folder's (a case folder renamed without its files)."""
    if not root.is_dir():
        return ""
    found = [p for p in sorted(root.rglob("*")) if len(p.relative_to(root).parts) <= 4 and p.is_file()
             and p.name.lower().endswith(suffixes)]
    if not found:
        return "; no NIfTI file (.nii or .nii.gz) in it"
    upper = [p for p in found if not p.name.endswith(suffixes)]
    if upper:
        return (f"; found {len(upper)} NIfTI file(s) with an upper-case suffix, e.g. {upper[0].name}: "
                "name them .nii.gz or .nii")
    example = found[0]
    return (f"; found {len(found)} NIfTI file(s), e.g. {example.relative_to(root)}, but none named after its folder "
            f"({example.parent.name}_flair.nii.gz, ...): a case folder and its files must share the case id")
