"""How far apart files as named and swapped files are for the swap check (data/plausibility.py).

    python bench/modality_swaps.py [--train 6] [--held-out 8] [--anatomy mni simple] [--json DIR]
For each anatomy: the typical correlation matrix of ``--train`` synthetic cases (seed 7, cases 1..),
then for ``--held-out`` other cases (``--seed`` 11, cases 100..) the mismatch as named, after renaming,
and whether the check flags them; the same with T2/FLAIR and with T1/T2 swapped, and across anatomies
(trained on one, cases from the other: a domain shift that must not look like a swap). The rule (an
exchange of two files that fits the reference better by SWAP_MIN_GAIN) was set on real scans
(bench/real_swaps.py); these synthetic cases chose nothing. The real BraTS 2013 patients carry two modalities, one
correlation, which no swap changes: they cannot be checked, and are listed with their FLAIR-T1ce
correlation beside the synthetic one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

from gliomask.data.plausibility import (_mismatch, modality_correlations, swapped_modalities,  # noqa: E402
                                        typical_correlations)
from gliomask.data.synth import synth_case  # noqa: E402

MODS = ("t1", "t1ce", "t2", "flair")
SWAPS = {"as named": (0, 1, 2, 3), "t2<->flair": (0, 1, 3, 2), "t1<->t2": (2, 1, 0, 3)}


def correlations(index: int, seed: int, anatomy: str) -> np.ndarray:
    images, _ = synth_case(index, seed, anatomy=anatomy)
    return np.asarray(modality_correlations(np.stack([images[m].astype(np.float32) for m in MODS])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train", type=int, default=6)
    ap.add_argument("--held-out", type=int, default=8)
    ap.add_argument("--seed", type=int, default=11, help="seed of the held-out cases")
    ap.add_argument("--anatomy", nargs="+", default=["mni", "simple"])
    ap.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2013_real"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    typical = {a: typical_correlations([correlations(i, 7, a) for i in range(1, args.train + 1)]) for a in args.anatomy}
    held = {a: [correlations(i, args.seed, a) for i in range(100, 100 + args.held_out)] for a in args.anatomy}
    rows = []
    for trained in args.anatomy:
        for given in args.anatomy:
            for swap, order in SWAPS.items():
                named, renamed, flagged = [], [], 0
                for corr in held[given]:
                    shown = corr[np.ix_(order, order)]
                    named.append(_mismatch(shown, np.asarray(typical[trained]), range(4)))
                    found = swapped_modalities(shown.tolist(), typical[trained], list(MODS))
                    flagged += found is not None
                    if found:
                        renamed.append(found[2])
                rows.append({"trained_on": trained, "cases": given, "files": swap, "n": len(named),
                             "mismatch_min": min(named), "mismatch_max": max(named),
                             "renamed_max": max(renamed) if renamed else "", "flagged": flagged})
    real = Path(args.real)
    if real.is_dir():
        from gliomask.io.brats import discover_cases, load_case

        for case in discover_cases(real):
            loaded = load_case(case, ("t1ce", "flair"), with_seg=False)
            corr = modality_correlations(loaded.images)
            rows.append({"trained_on": "-", "cases": case.case_id, "files": "t1ce-flair correlation",
                         "n": 1, "mismatch_min": corr[0][1], "mismatch_max": "",
                         "renamed_max": "", "flagged": "not checkable (2 modalities)"})
        for a in args.anatomy:
            rows.append({"trained_on": a, "cases": "synthetic typical", "files": "t1ce-flair correlation", "n": args.train,
                         "mismatch_min": typical[a][1][3], "mismatch_max": "", "renamed_max": "", "flagged": ""})
    emit("modality_swaps", rows, args.json)


if __name__ == "__main__":
    main()
