"""The swap and contrast checks (data/plausibility.py) on real four-modality scans: files as named, every
exchange of two files, and a T1 given as T1ce.

    python bench/real_swaps.py [--data ../shared/data/brats2021_real] [--json DIR]

Per patient, the in-brain correlation matrix of T1, T1ce, T2 and FLAIR; the reference is the median of
the *other* patients' matrices (leave one out), so that no patient checks itself. Rows: the files as
named and each exchange of two files (what a user who swapped them gives gliomask; exchanging files
permutes the matrix, no image is rewritten), the gain that the best exchange brings and whether the
check flags the case and names the right pair. SWAP_MIN_GAIN was chosen on these rows (a tuning figure:
five patients, no held-out set). Last, the median of all patients' matrices: REAL_SCAN_CORRELATIONS.
Skips with a message when the folder is absent.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODS = ("t1", "t1ce", "t2", "flair")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "brats2021_real")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: no real four-modality set here ({args.data})")
        return 0

    from gliomask.data.plausibility import SWAP_MIN_GAIN, _mismatch, modality_correlations, swapped_modalities
    from gliomask.io.brats import discover_cases, load_case

    matrices = {c.case_id: np.asarray(modality_correlations(load_case(c, MODS, with_seg=False).images))
                for c in discover_cases(args.data)}
    rows = []
    for cid, corr in matrices.items():
        reference = np.median([m for other, m in matrices.items() if other != cid], axis=0)
        for i, j in [(None, None), *itertools.combinations(range(4), 2)]:
            order = list(range(4))
            if i is not None:
                order[i], order[j] = j, i
            given = corr[np.ix_(order, order)]
            found = swapped_modalities(given, reference, list(MODS))
            as_named = _mismatch(given, reference, range(4))
            swap = "as named" if i is None else f"{MODS[i]}<->{MODS[j]}"
            if i is None:
                verdict = "flagged (false alarm)" if found else "not flagged (right)"
            elif {MODS[i], MODS[j]} == {"t1", "t1ce"}:
                verdict = "not checkable (T1/T1ce)" if not found else "flagged"
            elif not found:
                verdict = "missed"
            else:
                verdict = "flagged, right pair" if set(found[0]) == {MODS[i], MODS[j]} else f"flagged, WRONG pair {sorted(found[0])}"
            rows.append({"patient": cid, "files": swap, "mismatch as named": round(as_named, 3),
                         "after best exchange": round(found[2], 3) if found else "-", "verdict": verdict})
    emit("real_swaps", rows, args.json)
    verdicts = [r["verdict"] for r in rows]
    print(f"\nSWAP_MIN_GAIN {SWAP_MIN_GAIN}: as named flagged {sum(v.startswith('flagged') for r, v in zip(rows, verdicts) if r['files'] == 'as named')}"
          f"/{len(matrices)}; checkable swaps flagged with the right pair {verdicts.count('flagged, right pair')}"
          f"/{sum(1 for r in rows if r['files'] not in ('as named', 't1<->t1ce'))}, wrong pair "
          f"{sum(v.startswith('flagged, WRONG') for v in verdicts)}")
    # T1ce without contrast: each patient's T1 (2 % noise added) given as its T1ce, against the other four
    from gliomask.data.plausibility import ENHANCEMENT_RATIO, MIN_TRAINING_ENHANCEMENT, case_problems, enhancement_share

    cases = {c.case_id: c for c in discover_cases(args.data)}
    loaded = {cid: load_case(c, MODS, with_seg=False) for cid, c in cases.items()}
    shares = {cid: enhancement_share(lc) for cid, lc in loaded.items()}
    rng = np.random.default_rng(0)
    enh_rows = []
    for cid, lc in loaded.items():
        typical = float(np.median([v for other, v in shares.items() if other != cid]))
        t1 = lc.images[0]
        fake = lc.images.copy()
        fake[1] = t1 + (rng.normal(0, 0.02 * t1[t1 > 0].std(), t1.shape) * (t1 > 0)).astype(np.float32)
        for label, images in (("as named", lc.images), ("T1 (+2 % noise) as T1ce", fake)):
            probe = type(lc)(lc.case_id, lc.modalities, images, None, lc.reference)
            flagged = case_problems(cases[cid], probe, None, typical)
            enh_rows.append({"patient": cid, "T1ce file": label, "enhancement share": enhancement_share(probe),
                             "others' median": round(typical, 4),
                             "verdict": ("flagged" if flagged else "not flagged") + (" (right)" if bool(flagged) == (label != "as named") else " (WRONG)")})
    emit("real_t1ce_enhancement", enh_rows, args.json)
    print(f"(flagged below {ENHANCEMENT_RATIO} x the training cases' share, when that is at least {MIN_TRAINING_ENHANCEMENT})")
    median = np.round(np.median(list(matrices.values()), axis=0), 3)
    print("median of all patients (REAL_SCAN_CORRELATIONS):")
    print("[" + ",\n ".join("[" + ", ".join(f"{v:.3f}" for v in row) + "]" for row in median) + "]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
