"""Saving matplotlib figures atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gliomask.io.atomic import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Write ``fig`` to ``path`` (temporary file, then rename) and close it."""
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", **savefig_kwargs)
    plt.close(fig)
    return Path(path)
