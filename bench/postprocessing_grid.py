"""The post-processing of `configs/cpu_light.yaml`, one setting at a time, on every stored set of held-out
cross-validation outputs (`bench/real.py`'s ``outputs_fold<k>[_notta].npz`` under bench/out/<run>/):

    python bench/postprocessing_grid.py [extra ...]      # extra: "gate=0.4,et=250,thr=0.5/0.3/0.5"

Per set: WT/TC/ET Dice over the nine held-out patients (WT from the FLAIR + T1ce pass, as predicted by
default) and their mean; then the mean over sets and on how many sets a variant beats the config's
settings. Extras also print the BraTS 2023 lesion-wise Dice. Every patient here took part in choosing
whatever this picks: its figures are development figures, not test figures.
"""
import sys
from dataclasses import replace
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import real
from gliomask.config import load_config
from gliomask.inference.core import PostProcessing, regions_from_probabilities
from gliomask.evaluation.lesionwise import lesionwise
from gliomask.evaluation.metrics import dice
cfg = load_config(ROOT / "configs" / "cpu_light.yaml", [])
base = PostProcessing.from_config(cfg.infer)
SETS = [(r, t) for r, t in [("real", ""), ("real", "_notta"), ("real_v2", ""), ("real_v2", "_notta"), ("real_pretrain", ""), ("real_m28", ""), ("real_m28", "_notta")]
        if (ROOT / "bench" / "out" / r / f"outputs_fold2{t}.npz").exists()]
if not SETS:
    sys.exit("skipped: no stored cross-validation outputs under bench/out/ (run bench/real.py first)")
ONLY = len(sys.argv) > 1  # extras only: the config's settings and the given variants
def variants():
    yield "default", base
    if ONLY:
        yield from extras()
        return
    for g in (0.3, 0.4): yield f"gate {g}", replace(base, min_lesion_score=g)
    for e in (250, 500): yield f"case ET {e}", replace(base, min_case_et_voxels=e)
    for i, n in enumerate("WT TC ET".split()):
        for t in (0.3, 0.4, 0.6):
            th = list(base.region_thresholds); th[i] = t
            yield f"{n} thr {t}", replace(base, region_thresholds=tuple(th))
    yield from extras()
def extras():
    for extra in sys.argv[1:]:
        kv = dict(x.split("=") for x in extra.split(","))
        p = base
        if "gate" in kv: p = replace(p, min_lesion_score=float(kv["gate"]))
        if "et" in kv: p = replace(p, min_case_et_voxels=int(kv["et"]))
        if "thr" in kv: p = replace(p, region_thresholds=tuple(float(v) for v in kv["thr"].split("/")))
        yield extra, p
cases = {}
for run, tag in SETS:
    outs = {}
    for k in range(3):
        outs.update(real.load_outputs(ROOT / "bench" / "out" / run / f"outputs_fold{k}{tag}.npz"))
    merged = {}
    for cid, subs in outs.items():
        sub = subs.get("flair+t1ce")
        has_more = sub is not None and sub is not subs["own"] and not np.array_equal(sub[0], subs["own"][0])
        o = real.whole_tumour_from(subs["own"], sub) if has_more else subs["own"][:3]
        merged[cid] = tuple(np.asarray(a, np.float32) if a.dtype == np.float16 else a for a in o[:3])
    cases[run + tag] = merged
table = {}
for name, post in variants():
    per_set = []
    for s, merged in cases.items():
        rows = []
        lw = []
        for cid, (p, sc, ref) in merged.items():
            pred = regions_from_probabilities(p, sc, post)
            rows.append([dice(pred[r], ref[r]) for r in range(3)])
            if len(sys.argv) > 1 and name in ("default", *sys.argv[1:]):
                lw.append([lesionwise(pred[r], ref[r], with_hd95=False)["lesion_dice"] for r in range(3)])
        m = np.array(rows).mean(0)
        per_set.append(m.mean())
        extra = f" lesion-wise {np.array(lw).mean(0).round(3)}" if lw else ""
        print(f"{name:>22} {s:>20}: {m[0]:.3f} {m[1]:.3f} {m[2]:.3f} | {m.mean():.3f}{extra}", flush=True)
    print(f"{name:>22} {'MEAN OVER SETS':>20}: {np.mean(per_set):.3f}  (sets improved {sum(x > y + 1e-4 for x, y in zip(per_set, table.get('default', per_set)))}, worse {sum(x < y - 1e-4 for x, y in zip(per_set, table.get('default', per_set)))})", flush=True)
    table[name] = per_set
