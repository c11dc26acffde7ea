"""`gliomask demo`: the whole pipeline on synthetic cases."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="synthesise, prepare, train, predict, evaluate and report, end to end")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for everything the demo writes")
    p.add_argument("--minutes", type=float, default=None, help="training budget (default 8 on CPU, 2 on GPU)")
    p.add_argument("--cases", type=int, default=24, help="synthetic training cases")
    p.add_argument("--test-cases", type=int, default=6, help="held-out synthetic cases evaluated at the end")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic cases and of training")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--fresh", action="store_true", help="replace an existing demo folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides")
    p.set_defaults(func=run)


def run(args) -> int:
    from gliomask.demo import run_demo

    run_demo(args.out, minutes=args.minutes, cases=args.cases, test_cases=args.test_cases, seed=args.seed,
             device=args.device, overrides=args.overrides, fresh=args.fresh, progress=not args.quiet)
    return 0
