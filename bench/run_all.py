"""`make bench`: run the benches and write one table of figures to bench/out/figures.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import _fmt  # noqa: E402

HERE = Path(__file__).parent
OUT = HERE / "out"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    demo_checkpoint = HERE.parent / "demo_out" / "run" / "best.pt"
    for script in ("synth.py", "prepare.py", "train.py", "predict.py", "evaluate.py"):
        print(f"=== bench/{script}", flush=True)
        extra = ["--also", str(demo_checkpoint)] if script == "predict.py" and demo_checkpoint.is_file() else []
        subprocess.run([sys.executable, str(HERE / script), "--json", str(OUT), *extra], check=True)
    lines = ["# gliomask bench figures", ""]
    for name in ("synth", "prepare", "train", "predict", "evaluate"):
        rows = json.loads((OUT / f"{name}.json").read_text())
        keys = list(dict.fromkeys(k for r in rows for k in r))
        lines += [f"## {name}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in rows:
            lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |")
        lines.append("")
    (OUT / "figures.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
