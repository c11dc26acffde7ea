"""Patient-level cross-validation folds."""

from __future__ import annotations

import numpy as np

from gliomask.errors import GliomaskError


def make_folds(case_ids: list[str], groups: list[str | None], k: int, seed: int) -> list[list[str]]:
    """Patient-level folds: shuffled with ``seed``, dealt round-robin within each group (HGG/LGG)."""
    if k > len(case_ids):
        raise GliomaskError(f"{k} folds need at least {k} cases, found {len(case_ids)}")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    position = 0
    for group in sorted({g or "" for g in groups}):
        members = sorted(c for c, g in zip(case_ids, groups) if (g or "") == group)
        for cid in rng.permutation(members):
            folds[position % k].append(str(cid))
            position += 1
    return [sorted(f) for f in folds]
