"""Helpers shared by several commands."""

from __future__ import annotations

# What --force lets through (gliomask.data.plausibility); prepare and predict share it.
FORCE_HELP = ("go on with inputs flagged as implausible (non-zero background, blank modality, one image under "
              "two names, files that look swapped), with a warning each (default: refuse)")


def fold_cases(args):
    """The validation patients of ``--fold`` in ``--fold-of PREPARED``, or None for every case."""
    if args.fold_of is None:
        return None
    from gliomask.data.prepared import Prepared

    return Prepared.open(args.fold_of).split(args.fold)[1]
