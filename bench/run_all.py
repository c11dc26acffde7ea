"""`make bench`: run the three benches and write one table of figures to bench/out/figures.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "out"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for script in ("prepare.py", "train.py", "predict.py"):
        print(f"=== bench/{script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), "--json", str(OUT)], check=True)
    lines = ["# gliomask bench figures", ""]
    for name in ("prepare", "train", "predict"):
        rows = json.loads((OUT / f"{name}.json").read_text())
        keys = list(dict.fromkeys(k for r in rows for k in r))
        lines += [f"## {name}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in rows:
            lines.append("| " + " | ".join(f"{r[k]:.3g}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys) + " |")
        lines.append("")
    (OUT / "figures.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
