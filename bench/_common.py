"""Helpers shared by the bench scripts: peak memory, synthetic data, figures table."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MB of this process (or of its finished children)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kb = resource.getrusage(who).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def own_peak_rss_mb() -> float:
    """This process's own peak RSS in MB (VmHWM). Unlike ``ru_maxrss``, which Linux carries over from the
    parent across fork and exec, VmHWM belongs to the process's own address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def emit(name: str, rows: list[dict], out_dir: str | Path | None) -> None:
    """Print rows as a table and, with ``out_dir``, save them as JSON for `make bench`."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    widths = {k: max(len(k), *(len(_fmt(r.get(k, ""))) for r in rows)) for k in keys}
    print(f"\n## {name}")
    print("| " + " | ".join(k.ljust(widths[k]) for k in keys) + " |")
    print("|" + "|".join("-" * (widths[k] + 2) for k in keys) + "|")
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(k, "")).ljust(widths[k]) for k in keys) + " |")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{name}.json").write_text(json.dumps(rows, indent=2))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)
