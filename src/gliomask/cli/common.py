"""Helpers shared by several commands."""

from __future__ import annotations


def fold_cases(args):
    """The validation patients of ``--fold`` in ``--fold-of PREPARED``, or None for every case."""
    if args.fold_of is None:
        return None
    from gliomask.data.prepared import Prepared

    return Prepared.open(args.fold_of).split(args.fold)[1]
