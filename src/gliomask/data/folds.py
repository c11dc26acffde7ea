"""Patient-level cross-validation folds."""

from __future__ import annotations

import numpy as np

from gliomask.errors import GliomaskError
from gliomask.io.brats import patient_of


def make_folds(case_ids: list[str], groups: list[str | None], k: int, seed: int,
               patients: list[str | None] | None = None) -> list[list[str]]:
    """Patient-level folds: patients shuffled with ``seed``, dealt round-robin within each group
    (HGG/LGG, a patient's group being that of its first case); every case of a patient lands in the
    patient's fold. A case's patient is ``patients[i]`` where given (a manifest's ``patient`` column),
    else read from its id (the timepoints of a BraTS 2023+ patient, :func:`patient_of`)."""
    patients = patients or [None] * len(case_ids)
    cases_of: dict[str, list[str]] = {}
    group_of: dict[str, str] = {}
    for cid, g, given in sorted(zip(case_ids, groups, patients), key=lambda cgp: cgp[0]):
        patient = given or patient_of(cid)
        cases_of.setdefault(patient, []).append(cid)
        group_of.setdefault(patient, g or "")
    if k > len(cases_of):
        raise GliomaskError(f"{k} folds need at least {k} patients, found {len(cases_of)}")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for group in sorted(set(group_of.values())):
        members = sorted(p for p, g in group_of.items() if g == group)
        for patient in rng.permutation(members):
            folds[position % k].extend(cases_of[str(patient)])
            position += 1
    return [sorted(f) for f in folds]


def cross_validation_splits(case_ids: list[str], groups: list[str | None], k: int, seed: int,
                            patients: list[str | None] | None = None) -> list[tuple[list[str], list[str]]]:
    """(training ids, validation ids) per fold of `make_folds`: every case in exactly one validation
    fold, and no patient on both sides of any split (checked, since a leak would make every figure a
    training figure)."""
    patients = patients or [None] * len(case_ids)
    patient_of_case = {c: p or patient_of(c) for c, p in zip(case_ids, patients)}
    splits = []
    for val in make_folds(case_ids, groups, k, seed, patients=patients):
        train = sorted(c for c in case_ids if c not in set(val))
        shared = {patient_of_case[c] for c in train} & {patient_of_case[c] for c in val}
        if shared:  # make_folds keeps a patient's cases together; this guards the invariant itself
            raise GliomaskError(f"patients on both sides of a split: {', '.join(sorted(shared))}")
        splits.append((train, list(val)))
    return splits
