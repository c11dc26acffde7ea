"""Cross-validation over every real patient we have: nine expert-labelled gliomas, patient folds.

    python bench/real.py [--data DIR ...] [--folds 3] [--minutes 20] [--modalities t1,t1ce,t2,flair]
                         [--synthetic N] [--pretrain-minutes M [--pretrain-cases N] [--pretrain-enhancing-fraction F]
                          [--pretrain-core-radius LO HI] [--pretrain-oedema-ratio LO HI]] [--no-tta]
                         [--ensemble N] [--reuse-models [--planes axial]] [--out bench/out/real] [key=value ...]

The real sets (default: ../shared/data/brats2021_real, five BraTS 2021 patients with T1, T1ce, T2 and
FLAIR, and ../shared/data/brats2013_real, four BRATS 2013 patients with FLAIR and T1ce only) are prepared
together with all four modalities (``--allow-missing``: a BRATS 2013 patient's T1 and T2 channels are
zero and flagged absent) and split into patient folds stratified by set (`cross_validation_splits`). Per
fold, one model is trained on the other folds with the documented CPU recipe (``configs/cpu_light.yaml``,
``train.max_minutes``), then every held-out patient is predicted from its files (the `Predictor`, as
`gliomask predict` does) with each subset of its modalities: its own set, FLAIR + T1ce, T1ce alone and
FLAIR alone. ``--synthetic N`` adds N synthetic cases (`gliomask synth`, MNI anatomy, seed 7) to every
fold's training patients (never held out): mixed batches of real and synthetic brains.
``--pretrain-minutes M`` instead pre-trains one model on synthetic cases only (``--pretrain-cases``,
seed 11, the same config and modalities, M minutes) and every fold starts from it (``model.weights``)
before its own ``--minutes`` on real patients: pre-training then fine-tuning. ``--pretrain-enhancing-fraction``,
``--pretrain-core-radius`` and ``--pretrain-oedema-ratio`` change the kinds of tumours those cases hold
(`TumourMix`, as ``gliomask synth`` takes them). The pre-trained model
depends on no real patient, so one serves every fold; its cost is paid once (``OUT/pretrain_<modalities>_
<N>cases_<M>min/``, reused when present).

Who chose what, so that every reported figure is on patients that chose nothing:
- ``fixed`` rows: the post-processing defaults of the config; no patient chose anything.
- ``cross-fitted`` rows: the post-processing search (`tune_postprocessing`, as training runs it) on the
  held-out predictions of the *other* folds, applied to this fold: each patient's figures come from
  settings it took no part in choosing (nnU-Net chooses its post-processing on out-of-fold predictions).
- ``+ enclosed centres`` rows: the fixed defaults with ``fill_holes`` on (centres enclosed by tumour
  core join it), to measure that rule alone.
Dice follows the BraTS rules (an empty region predicted empty scores 1, anything else 0).

The held-out patients are predicted with flip test-time augmentation, as ``gliomask predict`` does by default;
``--no-tta`` predicts without it, and its outputs and tables carry a ``_notta`` suffix, so one folder
holds both. ``--reuse-models`` predicts with the fold models already in ``OUT/fold<k>/best.pt`` instead of
training them again: with ``--no-tta`` it measures the flips on the very same models, at the cost of prediction.
``--ensemble N`` trains N models per fold (``train.seed`` 0..N-1, ``--minutes`` each: the fold costs N times as
much; model 0 is the single-model run, ``OUT/fold<k>``, the others ``OUT/fold<k>_m<i>``) and scores the mean of
their held-out probabilities and detection scores, what ``gliomask predict -m A B`` does (`Predictor.from_checkpoints`);
``real_cv_members`` gives each model's own mean, as the single-model recipe would have scored it.
Held-out outputs are cached per fold and model (``outputs_fold<k>[_m<i>][_notta].npz``), so ``--skip-training``
rescores a run.
Skips with a message when no real set is here (a user's clone has no ../shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SUBSETS = {"own": None, "flair+t1ce": ("flair", "t1ce"), "t1ce": ("t1ce",), "flair": ("flair",)}
REGIONS = ("WT", "TC", "ET")


def gather(data_dirs: list[Path], out: Path, synthetic: int = 0) -> tuple[Path, dict[str, str]]:
    """One BraTS folder of symbolic links to every case file of ``data_dirs`` (and ``synthetic`` generated
    cases); {case id: set name}."""
    from gliomask.io.brats import discover_cases

    root = out / "data"
    if root.exists():
        shutil.rmtree(root)
    sets = {}
    if synthetic:
        from gliomask.data.synth import synthesize

        synth = out / f"synthetic{synthetic}"
        if not synth.is_dir():
            synthesize(synth, cases=synthetic, seed=7, edition="2019", workers=2, progress=False)
        data_dirs = [*data_dirs, synth]
    for data in data_dirs:
        for case in discover_cases(data):
            folder = root / case.case_id
            folder.mkdir(parents=True)
            for path in [*case.images.values(), case.seg]:
                (folder / Path(path).name).symlink_to(Path(path).resolve())
            sets[case.case_id] = "synthetic" if data.name.startswith("synthetic") else data.name
    return root, sets


def pretrain(out: Path, config: Path, modalities: str, cases: int, minutes: float, overrides: list[str],
             mix) -> Path:
    """A model trained on ``cases`` synthetic brains only (none real), for ``minutes``; its best.pt.
    ``mix``: the kinds of tumours generated (`TumourMix`)."""
    from gliomask.config import load_config
    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.data.synth import synthesize
    from gliomask.engine.train import train

    mix_tag = "" if mix.is_default else (f"_enh{mix.enhancing_fraction:g}_core{mix.core_radius_mm[0]:g}-"
                                         f"{mix.core_radius_mm[1]:g}_oed{mix.oedema_ratio[0]:g}-{mix.oedema_ratio[1]:g}")
    run = out / f"pretrain_{modalities.replace(',', '_')}_{cases}cases_{minutes:g}min{mix_tag}"
    if (run / "best.pt").is_file():
        print(f"pre-trained model reused: {run / 'best.pt'}", flush=True)
        return run / "best.pt"
    synth, prepared = out / f"pretrain_synthetic{cases}{mix_tag}", out / f"pretrain_prepared{cases}{mix_tag}"
    if not synth.is_dir():
        synthesize(synth, cases=cases, seed=11, edition="2019", workers=2, progress=False, mix=mix)
    if prepared.exists():
        shutil.rmtree(prepared)
    prepare(synth, prepared, PrepareSettings(modalities=modalities, folds=2, allow_missing=True), workers=2, progress=False)
    from gliomask.data.prepared import Prepared

    ids = Prepared.open(prepared).case_ids
    split = (ids[:-2], ids[-2:])  # two synthetic cases choose the pre-trained checkpoint
    print(f"pre-training on {len(split[0])} synthetic cases for {minutes:g} min", flush=True)
    t0 = time.monotonic()
    summary = train(prepared, run, load_config(config, [*overrides, f"train.max_minutes={minutes}"]), fold=None,
                    split=split, progress=False, command_line=sys.argv)
    print(f"pre-trained: {summary['steps']} steps in {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    return run / "best.pt"


def held_out_outputs(checkpoint: Path, data: Path, case_ids: list[str], tta: bool = True,
                     planes: list[str] | None = None) -> dict[str, dict]:
    """Per held-out case and modality subset: (Float16 probabilities, Float16 scores, Bool reference)
    cropped to the tumour's neighbourhood, through the same `Predictor.detect` as `gliomask predict`
    (``planes``: fuse only these of the checkpoint's trained planes, as `gliomask predict --planes`)."""
    from gliomask.engine.validate import REGION_CANDIDATES
    from gliomask.inference.predictor import Predictor
    from gliomask.io.brats import discover_cases, load_case
    from gliomask.labels import regions_from_labels
    from gliomask.utils import bounding_box

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", tta=tta, planes=planes)
    subsets = SUBSETS if predictor.any_subset else {"own": None}  # a model without flags reads only its own set
    cases = {c.case_id: c for c in discover_cases(data)}
    result = {}
    for cid in case_ids:
        loaded = load_case(cases[cid], predictor.modalities, allow_missing=True)
        for name, subset in subsets.items():
            present = loaded.present if subset is None else tuple(m for m in predictor.modalities if m in subset)
            if not set(present) <= set(loaded.present):
                continue  # a BRATS 2013 patient has no T2 to hide
            if subset is not None and set(present) == set(loaded.present):
                name_own = "own"  # FLAIR + T1ce of a BRATS 2013 patient is its own set: computed once
                if name_own in result.get(cid, {}):
                    result[cid][name] = result[cid][name_own]
                    continue
            images = np.where(np.isin(np.array(predictor.modalities), present)[:, None, None, None], loaded.images, 0)
            t0 = time.monotonic()
            prob, scores, pre = predictor.detect(images.astype(np.float32), present, whole_tumour_pass=False)
            ref = pre.to_slices(regions_from_labels(loaded.seg))
            lowest = min(min(REGION_CANDIDATES), *predictor.post.region_thresholds)
            box = bounding_box((prob.max(axis=0) >= lowest) | ref.any(axis=0)) or tuple(slice(0, 1) for _ in ref.shape[1:])
            result.setdefault(cid, {})[name] = (prob[(slice(None), *box)].astype(np.float16),
                                                scores[box].astype(np.float16), ref[(slice(None), *box)],
                                                np.array([b.start for b in box]))  # where the crop sits
            print(f"  {cid} [{name}: {', '.join(present)}] {time.monotonic() - t0:.1f} s", flush=True)
    return result


def save_outputs(path: Path, outputs: dict) -> None:
    arrays = {f"{cid}|{sub}|{i}": a for cid, subs in outputs.items() for sub, parts in subs.items()
              for i, a in enumerate(parts)}
    np.savez_compressed(path, **arrays)


def load_outputs(path: Path) -> dict:
    out: dict = {}
    with np.load(path) as z:
        for key in z.files:
            cid, sub, i = key.split("|")
            out.setdefault(cid, {}).setdefault(sub, [None] * 4)[int(i)] = z[key]
    # caches written before crops carried their origin have three parts
    return {cid: {sub: tuple(p for p in parts if p is not None) for sub, parts in subs.items()} for cid, subs in out.items()}


def as_float32(parts: tuple) -> tuple:
    """Stored outputs keep probabilities and scores as Float16 (half the cache); scoring takes them as Float32.
    Other parts (Bool reference, Int crop origin) pass unchanged."""
    return tuple(np.asarray(a, np.float32) if a.dtype == np.float16 else a for a in parts)


def case_dice(output, post) -> list[float]:
    from gliomask.evaluation.metrics import dice
    from gliomask.inference.core import regions_from_probabilities

    prob, scores, ref = as_float32(output[:3])
    pred = regions_from_probabilities(prob, scores, post)
    return [dice(pred[r], ref[r]) for r in range(3)]


def _on_common_crop(parts: list[tuple]) -> list[tuple]:
    """Held-out outputs of one case from several passes (each cropped to its own box) on one common box.
    The crop origin is the fourth part; caches written before it was kept are aligned by the reference
    (identical in every pass), whose bounding box every crop contains."""
    if all(len(p) > 3 for p in parts):
        origins = [np.asarray(p[3]) for p in parts]
    else:
        origins = [-np.array([i.min() for i in np.nonzero(p[2].any(axis=0))]) for p in parts]
    lo = np.min(origins, axis=0)
    hi = np.max([o + np.array(p[2].shape[1:]) for o, p in zip(origins, parts)], axis=0)
    out = []
    for o, (prob, scores, ref, *_) in zip(origins, parts):
        box = tuple(slice(a - b, a - b + n) for a, b, n in zip(o, lo, ref.shape[1:]))
        P = np.zeros((3, *(hi - lo)), np.float32)
        S = np.zeros(tuple(hi - lo), np.float32)
        R = np.zeros((3, *(hi - lo)), bool)
        P[(slice(None), *box)], S[box], R[(slice(None), *box)] = prob, scores, ref
        out.append((P, S, R))
    return out


def ensemble_outputs(members: list[dict]) -> dict:
    """Held-out outputs of several models of one fold (each {case: {subset: parts}}) -> their mean: the
    probabilities and detection scores averaged on a common crop (as nnU-Net averages its fold models'
    softmax), each model with its own flips already fused. One model's outputs pass unchanged."""
    if len(members) == 1:
        return members[0]
    result: dict = {}
    for cid, subs in members[0].items():
        for sub in subs:
            parts = [m[cid][sub] for m in members]
            common = _on_common_crop(parts)
            origin = np.min([np.asarray(p[3]) for p in parts], axis=0) if all(len(p) > 3 for p in parts) else None
            prob = np.mean([c[0] for c in common], axis=0).astype(np.float16)
            scores = np.mean([c[1] for c in common], axis=0).astype(np.float16)
            result.setdefault(cid, {})[sub] = (prob, scores, common[0][2]) + ((origin,) if origin is not None else ())
    return result


def whole_tumour_from(own: tuple, subset: tuple) -> tuple:
    """What `Predictor` does with ``infer.whole_tumour_modalities``: the WT probability of the subset's
    pass, TC and ET of the pass with every modality, the higher detection score of the two."""
    (p_own, s_own, ref), (p_sub, s_sub, _) = _on_common_crop([own, subset])
    return np.concatenate([p_sub[:1], p_own[1:]]), np.maximum(s_own, s_sub), ref


def default_outputs(subs: dict) -> tuple:
    """What the default prediction scores for one case: WT from the FLAIR + T1ce pass where the patient has
    more modalities than those two (`whole_tumour_from`), otherwise its own pass."""
    sub = subs.get("flair+t1ce")
    has_more = sub is not None and sub is not subs["own"] and not np.array_equal(sub[0], subs["own"][0])
    return whole_tumour_from(subs["own"], sub) if has_more else subs["own"]


def summary_rows(per_case: dict, sets: dict[str, str], label: str, subset: str, chose: str) -> list[dict]:
    """Mean, min and max per region over all patients and per real set."""
    rows = []
    groups = {"all real": sorted(per_case), **{s: sorted(c for c in per_case if sets[c] == s) for s in sorted(set(sets.values()))}}
    for group, cids in groups.items():
        cids = [c for c in cids if c in per_case]
        if not cids:
            continue
        values = np.array([per_case[c] for c in cids])
        row = {"post-processing": label, "modalities": subset, "patients": f"{group} ({len(cids)})"}
        for r, name in enumerate(REGIONS):
            row[f"{name} mean"] = round(float(values[:, r].mean()), 3)
            row[f"{name} min-max"] = f"{values[:, r].min():.2f}-{values[:, r].max():.2f}"
        row["who chose"] = chose
        rows.append(row)
    return rows


def main() -> int:
    from gliomask.data.synth_tumour import TumourMix
    from gliomask.errors import GliomaskError

    default_mix = TumourMix()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+",
                    default=[SHARED / "brats2021_real", SHARED / "brats2013_real"])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="seed of the patient folds")
    ap.add_argument("--minutes", type=float, default=20.0, help="train.max_minutes per fold (whole run)")
    ap.add_argument("--modalities", default="t1,t1ce,t2,flair",
                    help="the model's modalities (a patient lacking some has them flagged absent)")
    ap.add_argument("--synthetic", type=int, default=0, help="synthetic cases added to every fold's training set")
    ap.add_argument("--pretrain-minutes", type=float, default=0,
                    help="pre-train on synthetic cases for this long, then fine-tune every fold from that model")
    ap.add_argument("--pretrain-cases", type=int, default=24, help="synthetic cases for --pretrain-minutes")
    ap.add_argument("--pretrain-enhancing-fraction", type=float, default=default_mix.enhancing_fraction, metavar="F",
                    help="pre-training cases: share with enhancing tumours (`gliomask synth --enhancing-fraction`)")
    ap.add_argument("--pretrain-core-radius", type=float, nargs=2, default=default_mix.core_radius_mm, metavar=("LO", "HI"),
                    help="pre-training cases: core radius range in mm (`gliomask synth --core-radius`)")
    ap.add_argument("--pretrain-oedema-ratio", type=float, nargs=2, default=default_mix.oedema_ratio, metavar=("LO", "HI"),
                    help="pre-training cases: oedema / core radius range (`gliomask synth --oedema-ratio`)")
    ap.add_argument("--ensemble", type=int, default=1, metavar="N",
                    help="models per fold (seeds 0..N-1, --minutes each); held-out outputs are their mean")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "cpu_light.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "real")
    ap.add_argument("--only-folds", type=int, nargs="*", help="train only these folds (others must be cached)")
    ap.add_argument("--skip-training", action="store_true", help="rescore the cached held-out outputs")
    ap.add_argument("--reuse-models", action="store_true", help="predict with the fold models of OUT, train none")
    ap.add_argument("--no-tta", action="store_true", help="held-out predictions without flip test-time augmentation")
    ap.add_argument("--planes", help="with --reuse-models: fuse only these of the fold models' planes "
                    "(comma-separated, e.g. axial); outputs and tables get the suffix _<planes>")
    ap.add_argument("overrides", nargs="*", help="extra key=value settings for training")
    args = ap.parse_args()
    planes = args.planes.split(",") if args.planes else None
    if planes and not (args.reuse_models or args.skip_training):
        ap.error("--planes re-predicts trained fold models: give it with --reuse-models (or --skip-training)")
    try:
        mix = TumourMix(args.pretrain_enhancing_fraction, tuple(args.pretrain_core_radius),
                        tuple(args.pretrain_oedema_ratio))
    except GliomaskError as e:
        ap.error(str(e))
    if not mix.is_default and not args.pretrain_minutes:
        ap.error("--pretrain-enhancing-fraction, --pretrain-core-radius and --pretrain-oedema-ratio need --pretrain-minutes")
    data_dirs = [d for d in args.data if d.is_dir()]
    if not data_dirs:
        print(f"skipped: no real set is here ({', '.join(map(str, args.data))})")
        return 0

    from gliomask.config import load_config
    from gliomask.data.folds import cross_validation_splits
    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.engine.train import train
    from gliomask.engine.validate import tune_postprocessing
    from gliomask.inference.core import PostProcessing

    args.out.mkdir(parents=True, exist_ok=True)
    data, sets = gather(data_dirs, args.out, args.synthetic)
    prepared_dir = args.out / f"prepared_{args.modalities.replace(',', '_')}_synth{args.synthetic}"
    tta = not args.no_tta
    tag = ("" if tta else "_notta") + ("_" + "+".join(planes) if planes else "")
    if not (args.skip_training or args.reuse_models):  # rescoring and re-predicting read no prepared slices
        prepare(data, prepared_dir, PrepareSettings(modalities=args.modalities, folds=args.folds, allow_missing=True),
                workers=2, progress=False)
    ids = sorted(c for c in sets if sets[c] != "synthetic")
    synthetic_ids = sorted(c for c in sets if sets[c] == "synthetic")
    splits = [(train_ids + synthetic_ids, val_ids)
              for train_ids, val_ids in cross_validation_splits(ids, [sets[c] for c in ids], args.folds, args.seed)]
    overrides = [f"train.max_minutes={args.minutes}", "infer.tune=false", "train.val_every=1000", *args.overrides]
    if args.pretrain_minutes and not (args.skip_training or args.reuse_models):
        weights = pretrain(args.out, args.config, args.modalities, args.pretrain_cases, args.pretrain_minutes,
                           ["infer.tune=false", "train.val_every=1000", *args.overrides], mix)
        overrides.append(f"model.weights={weights}")
    cfg = load_config(args.config, overrides)
    default_post = PostProcessing.from_config(cfg.infer)
    outputs: dict[int, dict] = {}
    runs = []
    members: dict[int, list[dict]] = {}  # per fold, each model's own held-out outputs (--ensemble)
    for k, (train_ids, val_ids) in enumerate(splits):
        members[k] = []
        for m in range(args.ensemble):
            member = "" if m == 0 else f"_m{m}"  # model 0 is the single model's run (seed 0)
            cache = args.out / f"outputs_fold{k}{member}{tag}.npz"
            run = args.out / f"fold{k}{member}"
            if not (args.skip_training or args.reuse_models) and (args.only_folds is None or k in args.only_folds):
                if run.exists():
                    shutil.rmtree(run)
                print(f"fold {k}{member}: training on {', '.join(train_ids)}; held out {', '.join(val_ids)}", flush=True)
                t0 = time.monotonic()
                summary = train(prepared_dir, run, load_config(args.config, [*overrides, f"train.seed={m}"]), fold=None,
                                split=(train_ids, val_ids), progress=False, command_line=sys.argv)
                wall = time.monotonic() - t0
                members[k].append(held_out_outputs(run / "best.pt", data, val_ids, tta=tta))  # --planes is refused here
                save_outputs(cache, members[k][-1])
                runs.append({"fold": k, "model": m, "held out": ", ".join(val_ids), "trained on": len(train_ids),
                             "synthetic": len(synthetic_ids),
                             "steps": summary["steps"], "train+val min": round(wall / 60, 1),
                             "predict+score min": round((time.monotonic() - t0 - wall) / 60, 1)})
                (args.out / f"run_fold{k}{member}.json").write_text(json.dumps(runs[-1]))
            else:  # the fold's model was trained by an earlier run: predict with it again, or read its outputs
                if args.reuse_models and not args.skip_training:
                    print(f"fold {k}{member}: predicting {', '.join(val_ids)} with {run / 'best.pt'}", flush=True)
                    members[k].append(held_out_outputs(run / "best.pt", data, val_ids, tta=tta, planes=planes))
                    save_outputs(cache, members[k][-1])
                else:
                    members[k].append(load_outputs(cache))
                if (args.out / f"run_fold{k}{member}.json").is_file():
                    runs.append(json.loads((args.out / f"run_fold{k}{member}.json").read_text()))
        outputs[k] = ensemble_outputs(members[k])
    if args.ensemble > 1:  # each model alone, as the single-model recipe would have scored it
        alone = []
        for m in range(args.ensemble):
            per_case = np.array([case_dice(default_outputs(subs), default_post)
                                 for fold in members.values() for subs in fold[m].values()])  # [cases, region]
            alone.append({"model": m, **{f"{n} mean": round(float(per_case[:, r].mean()), 3) for r, n in enumerate(REGIONS)}})
        emit(f"real_cv{tag}_members", alone, args.out)

    rows, chosen = [], {}
    for subset in [s for s in SUBSETS if any(s in subs for o in outputs.values() for subs in o.values())]:
        fixed, holes, crossfit, wt_sub = {}, {}, {}, {}
        for k, fold_out in outputs.items():
            # cross-fitting: the search sees only the other folds' held-out patients (their own modalities)
            others = [subs["own"][:3] for j, o in outputs.items() if j != k for subs in o.values()]
            if subset == "own":
                chosen[k], _ = tune_postprocessing(others, default_post)
            for cid, subs in fold_out.items():
                if subset not in subs:
                    continue
                fixed[cid] = case_dice(subs[subset], default_post)
                holes[cid] = case_dice(subs[subset], replace(default_post, fill_holes=True))
                crossfit[cid] = case_dice(subs[subset], chosen[k])
                if subset == "own":  # the default predict: WT from the FLAIR + T1ce pass where there are more
                    wt_sub[cid] = case_dice(default_outputs(subs), default_post)
        rows += summary_rows(fixed, sets, "fixed (config defaults)", subset, "nobody")
        rows += summary_rows(holes, sets, "fixed + enclosed centres", subset, "nobody")
        rows += summary_rows(crossfit, sets, "cross-fitted", subset, "the other folds' patients")
        if wt_sub:
            rows += summary_rows(wt_sub, sets, "fixed, WT from the FLAIR + T1ce pass", subset, "nobody")
        if subset == "own":
            per_patient = [{"patient": c, "set": sets[c], **{f"{n} fixed": round(fixed[c][i], 3) for i, n in enumerate(REGIONS)},
                            **{f"{n} cross-fitted": round(crossfit[c][i], 3) for i, n in enumerate(REGIONS)},
                            **{f"{n} WT from FLAIR+T1ce": round(wt_sub[c][i], 3) for i, n in enumerate(REGIONS)}}
                           for c in sorted(fixed)]
    emit(f"real_cv{tag}_runs", runs, args.out)
    emit(f"real_cv{tag}_patients", per_patient, args.out)
    emit(f"real_cv{tag}", rows, args.out)
    for k, post in chosen.items():
        print(f"fold {k}: cross-fitted post-processing (chosen on the other folds' patients): "
              f"{json.dumps({key: v for key, v in asdict(post).items() if v is not None})}")
    (args.out / f"real_cv{tag}_settings.json").write_text(json.dumps(
        {"folds": [{"train": t, "held_out": v} for t, v in splits], "minutes": args.minutes,
         "synthetic": args.synthetic, "modalities": args.modalities, "tta": tta, "models per fold": args.ensemble,
         "planes fused": planes or "all trained",
         "pretrain": {"minutes": args.pretrain_minutes, "cases": args.pretrain_cases, "tumour_mix": asdict(mix)}
         if args.pretrain_minutes else None,
         "config": str(args.config), "overrides": overrides, "threads": os.environ.get("OMP_NUM_THREADS"),
         "cross_fitted": {k: asdict(p) for k, p in chosen.items()}}, indent=1, default=list))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
