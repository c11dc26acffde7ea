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
import real  # noqa: E402
from gliomask.config import load_config  # noqa: E402
from gliomask.inference.core import PostProcessing, regions_from_probabilities  # noqa: E402
from gliomask.evaluation.lesionwise import lesionwise  # noqa: E402
from gliomask.evaluation.metrics import dice  # noqa: E402


RUNS = [("real", ""), ("real", "_notta"), ("real_v2", ""), ("real_v2", "_notta"), ("real_pretrain", ""),
        ("real_m28", ""), ("real_m28", "_notta"), ("real_planes3", ""), ("real_planes3", "_axial"),
        ("real_ctx2", ""), ("real_pretrain_mix", ""), ("real_pretrain_mix", "_notta")]
# bench/out/<run>/outputs_fold<k><tag>.npz, where present


def parse(extra: str, base: PostProcessing) -> PostProcessing:
    """"gate=0.4,et=250,thr=0.5/0.3/0.5" -> the config's post-processing with those settings."""
    kv = dict(x.split("=") for x in extra.split(","))
    post = base
    if "gate" in kv:
        post = replace(post, min_lesion_score=float(kv["gate"]))
    if "et" in kv:
        post = replace(post, min_case_et_voxels=int(kv["et"]))
    if "thr" in kv:
        post = replace(post, region_thresholds=tuple(float(v) for v in kv["thr"].split("/")))
    return post


def variants(base: PostProcessing, extras: list[str]):
    """(name, post-processing): the config's, then one setting changed at a time (unless extras are given),
    then the extras."""
    yield "default", base
    if not extras:
        for g in (0.3, 0.4):
            yield f"gate {g}", replace(base, min_lesion_score=g)
        for e in (250, 500):
            yield f"case ET {e}", replace(base, min_case_et_voxels=e)
        for i, n in enumerate(("WT", "TC", "ET")):
            for t in (0.3, 0.4, 0.6):
                th = list(base.region_thresholds)
                th[i] = t
                yield f"{n} thr {t}", replace(base, region_thresholds=tuple(th))
    for extra in extras:
        yield extra, parse(extra, base)


def held_out_sets() -> dict[str, dict]:
    """Per stored run: case id -> (Float32 [3, ...] probabilities, Float32 scores, Bool [3, ...] reference)
    with WT from the FLAIR + T1ce pass where there is one, as the default prediction does."""
    cases = {}
    for run, tag in RUNS:
        if not (ROOT / "bench" / "out" / run / f"outputs_fold2{tag}.npz").exists():
            continue
        outs = {}
        for k in range(3):
            outs.update(real.load_outputs(ROOT / "bench" / "out" / run / f"outputs_fold{k}{tag}.npz"))
        cases[run + tag] = {cid: real.as_float32(real.default_outputs(subs)[:3]) for cid, subs in outs.items()}
    return cases


def main() -> int:
    extras = sys.argv[1:]
    cases = held_out_sets()
    if not cases:
        print("skipped: no stored cross-validation outputs under bench/out/ (run bench/real.py first)")
        return 0
    base = PostProcessing.from_config(load_config(ROOT / "configs" / "cpu_light.yaml", []).infer)
    print(f"config's post-processing: {base}")
    reference = None
    for name, post in variants(base, extras):
        per_set = []
        for s, merged in cases.items():
            rows, lw = [], []
            for p, scores, ref in merged.values():
                pred = regions_from_probabilities(p, scores, post)
                rows.append([dice(pred[r], ref[r]) for r in range(3)])
                if extras:  # lesion-wise Dice only for the named variants: it costs far more
                    lw.append([lesionwise(pred[r], ref[r], with_hd95=False)["lesion_dice"] for r in range(3)])
            m = np.array(rows).mean(0)
            per_set.append(m.mean())
            lesion = f" lesion-wise {np.array(lw).mean(0).round(3)}" if lw else ""
            print(f"{name:>22} {s:>20}: {m[0]:.3f} {m[1]:.3f} {m[2]:.3f} | {m.mean():.3f}{lesion}", flush=True)
        reference = per_set if reference is None else reference
        better = sum(x > y + 1e-4 for x, y in zip(per_set, reference))
        worse = sum(x < y - 1e-4 for x, y in zip(per_set, reference))
        print(f"{name:>22} {'MEAN OVER SETS':>20}: {np.mean(per_set):.3f}  (sets improved {better}, worse {worse})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
