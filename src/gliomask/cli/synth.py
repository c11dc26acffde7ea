"""`gliomask synth`: synthetic BraTS-like cases."""

from __future__ import annotations

from pathlib import Path

from gliomask.utils import default_workers


def register(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic BraTS-like cases in the BraTS folder layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--edition", choices=["2019", "2023"], default="2019")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.data.synth import synthesize

    ids = synthesize(args.out, cases=args.cases, seed=args.seed, edition=args.edition,
                     workers=args.workers, progress=not args.quiet)
    print(f"wrote {len(ids)} synthetic BraTS {args.edition} cases to {args.out}")
    return 0
