"""`gliomask synth`: synthetic BraTS-like cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from gliomask.data.synth import ANATOMIES
from gliomask.data.synth_tumour import TumourMix
from gliomask.utils import default_workers


def register(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic BraTS-like cases in the BraTS folder layout",
                       description="Write synthetic BraTS cases (four modalities and a segmentation, int16 NIfTI on "
                                   "the BraTS grid) into a new folder.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder to create (must not exist or be empty)")
    p.add_argument("--cases", type=int, default=8, help="number of cases")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same bytes")
    p.add_argument("--edition", choices=["2019", "2023", "2024"], default="2019",
                   help="file names and labels: 2019 (HGG/LGG folders, ET=4), 2023 (-t1n/-t1c/-t2w/-t2f, ET=3) or "
                        "2024 (post-treatment: 2023 names, ET=3, and a resection cavity, RC=4, in every case with a tumour)")
    p.add_argument("--anatomy", choices=list(ANATOMIES), default="mni",
                   help="mni: the MNI ICBM152 brain template (shipped with gliomask), deformed per case; "
                        "simple: a geometric head, faster, for quick checks")
    p.add_argument("--timepoints", type=int, default=1,
                   help="scans per case: from 2 on, a synthetic follow-up (one anatomy, tumours that grow, shrink, "
                        "vanish and appear; the true story in followup_truth.json; mni anatomy)")
    mix = TumourMix()
    p.add_argument("--enhancing-fraction", type=float, default=mix.enhancing_fraction, metavar="F",
                   help="share of cases with enhancing tumours (the rest: a non-enhancing core only); mni anatomy")
    p.add_argument("--core-radius", type=float, nargs=2, default=list(mix.core_radius_mm), metavar=("LO", "HI"),
                   help="range of the main tumour's core radius in mm; mni anatomy")
    p.add_argument("--oedema-ratio", type=float, nargs=2, default=list(mix.oedema_ratio), metavar=("LO", "HI"),
                   help="range of oedema radius / core radius (near 1: little oedema around the core); mni anatomy")
    p.add_argument("--workers", type=int, default=default_workers(), help="processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.data.synth import synthesize
    from gliomask.errors import GliomaskError

    mix = TumourMix(args.enhancing_fraction, tuple(args.core_radius), tuple(args.oedema_ratio))
    if args.timepoints != 1:
        from gliomask.followup.synthetic import synthesize_followup

        if args.anatomy != "mni":
            raise GliomaskError("--timepoints needs the mni anatomy")
        if not mix.is_default:
            raise GliomaskError("--timepoints draws its own tumours: --enhancing-fraction, --core-radius and "
                                "--oedema-ratio do not apply")
        ids = synthesize_followup(args.out, patients=args.cases, timepoints=args.timepoints, seed=args.seed,
                                  edition=args.edition)
        print(f"wrote {len(ids)} synthetic patients of {args.timepoints} timepoints each (BraTS {args.edition} names) "
              f"to {args.out}; the true story in {args.out / 'followup_truth.json'}")
        return 0

    ids = synthesize(args.out, cases=args.cases, seed=args.seed, edition=args.edition,
                     workers=args.workers, progress=not args.quiet, anatomy=args.anatomy, mix=mix)
    print(f"wrote {len(ids)} synthetic BraTS {args.edition} cases ({args.anatomy} anatomy) to {args.out}")
    return 0
