"""`gliomask train`: a plain training loop in the manner of torchvision's references/detection.

Runs on CPU, one GPU, or under ``torchrun`` with DDP (NCCL on GPU, gloo on CPU). Rank 0 logs and
writes checkpoints; every rank sees the same reduced losses and the same stop decision. The network
comes from `gliomask.models.factory`; what a checkpoint holds and the RNG state from `run_state`.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gliomask.config import Config, load_config, save_config
from gliomask.data.dataset import PreparedSlices, available_modalities, collate
from gliomask.data.planes import plane_dim
from gliomask.data.prepared import Prepared
from gliomask.data.transforms import SliceAugment
from gliomask.engine import distributed as dist_utils
from gliomask.engine.ema import weight_ema
from gliomask.engine.logger import Logger, say
from gliomask.engine.preemption import StopRequests, ignore_stop_signals, signal_name
from gliomask.engine.run_state import checkpoint_payload, restore_scaler, rng_state, set_rng_state, versions
from gliomask.engine.sampler import TumourBalancedSampler
from gliomask.engine.schedule import WarmupCosine
from gliomask.engine.validate import estimate_seconds, tune_postprocessing, validate, validation_reserve
from gliomask.errors import GliomaskError, Preempted
from gliomask.inference.core import PostProcessing
from gliomask.labels import CLASS_SCHEMES
from gliomask.io.atomic import append_text, remove_stale_temporaries
from gliomask.models.builder import BACKBONES
from gliomask.models.checkpoint import load_checkpoint, save_checkpoint
from gliomask.models.factory import detector_scheme, input_channels, model_from_config, resolve_device
from gliomask.models.weights import load_weights
from gliomask.utils import default_threads, loader_workers, progress_bar, write_json

RESERVE_EVERY = 50  # steps between re-estimates of the final validation's cost
# what only last.pt needs, to resume; best.pt is for prediction
RESUME_ONLY = ("train_model", "ema", "optimizer", "scheduler", "scaler", "rng", "rng_per_rank")


# What a run folder holds; every one is written by rank 0 of this function or its loops.
RUN_FILES = ("config.yaml", "command.txt", "env.json", "metrics.jsonl", "train.log", "curves.png", "last.pt", "best.pt",
             "summary.json")


def train(data: str | Path, out: str | Path, cfg: Config | None = None, *, fold: int | None = 0,
          resume: bool = False, overrides: list[str] | None = None, config_file: str | Path | None = None,
          command_line: list[str] | None = None, progress: bool = True,
          epoch_end_hook: Callable[[int], None] | None = None,
          end_hook: Callable[[torch.nn.Module], None] | None = None,
          split: tuple[list[str], list[str]] | None = None) -> dict:
    """Train a Mask R-CNN on a prepared folder; returns a summary (best score, checkpoint paths).

    The run folder ``out`` gets config.yaml, command.txt, env.json, metrics.jsonl, curves.png,
    last.pt and best.pt. With ``resume`` the run continues from ``out/last.pt`` exactly (model,
    optimiser, schedule, AMP scaler, epoch and RNG states). ``split`` (training ids, validation ids)
    replaces the prepared ``fold`` with a split of one's own (a cross-validation over other folds).
    """
    prepared = Prepared.open(data)
    prepared.geometry  # a mixture of orientations or spacings is refused before anything is written
    for case_id in prepared.case_ids:  # a damaged prepared folder is one clear error now, not in a worker later
        prepared.arrays(case_id)
    out = Path(out)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(out / "last.pt")
        cfg = load_config(config_file, overrides, base=ckpt["config"])
        if cfg.model != load_config(None, None, base=ckpt["config"]).model:
            raise GliomaskError("cannot change model settings when resuming", out / "last.pt")
        if (list(ckpt["modalities"]) != list(prepared.settings["modalities"])
                or ckpt["scheme"] != detector_scheme(cfg, prepared.settings["scheme"])):
            raise GliomaskError("checkpoint was trained on other modalities or classes than this prepared data", out / "last.pt")
        fold = ckpt.get("fold", fold)
    elif cfg is None:
        cfg = load_config(config_file, overrides)
    tc = cfg.train
    device = resolve_device(tc.device)
    rank, world, _ = dist_utils.init_distributed(device.type)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    main = rank == 0
    threads = tc.threads or default_threads()  # the CPUs this process may use, shared by a node's ranks
    if threads:
        if not tc.threads:
            threads = max(1, threads // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1), 1))
        torch.set_num_threads(threads)
    if not resume and (out / "last.pt").exists():  # every rank checks, so none waits in a barrier alone
        raise GliomaskError("run folder already holds a run; pass --resume to continue it or choose another --out", out)
    # Every setting that can be refused is checked before the run folder is written.
    recorded = (ckpt or {}).get("provenance") or {}
    if resume and ckpt.get("fold") is None and recorded.get("train_cases") is not None:  # a split of one's own
        split = (list(recorded["train_cases"]), list(recorded.get("val_cases") or []))
    train_ids, val_ids = split if split is not None else prepared.split(fold)
    unknown = sorted(set(train_ids + val_ids) - set(prepared.case_ids))
    if unknown:
        raise GliomaskError(f"cases not in this preparation: {', '.join(unknown[:5])}", Path(data))
    scheme = detector_scheme(cfg, prepared.settings["scheme"])
    if tc.optimizer not in ("sgd", "adamw"):
        raise GliomaskError(f"unknown optimizer {tc.optimizer!r}; choose sgd or adamw")
    if cfg.model.backbone not in BACKBONES:
        raise GliomaskError(f"unknown backbone {cfg.model.backbone!r}; choose from {', '.join(BACKBONES)}")
    if cfg.model.weights and cfg.model.weights != "coco" and not Path(cfg.model.weights).is_file():
        raise GliomaskError("model.weights: file not found", cfg.model.weights)
    context = cfg.model.context
    planes = tuple(cfg.model.planes) or (prepared.settings["axis"],)
    try:
        dims = tuple(plane_dim(prepared.settings["axis"], p) for p in planes)
    except ValueError as exc:
        raise GliomaskError(f"model.planes: {exc}") from None
    torch.manual_seed(tc.seed + rank)
    np.random.seed(tc.seed + rank)
    random.seed(tc.seed + rank)

    if tc.modality_dropout and not cfg.model.modality_flags:
        raise GliomaskError("train.modality_dropout needs model.modality_flags=true (the model must see what is missing)")
    modalities = list(prepared.settings["modalities"])
    if not cfg.model.modality_flags and any(len(available_modalities(prepared.case_meta(c), modalities)) < len(modalities)
                                            for c in train_ids + val_ids):
        raise GliomaskError("some cases lack modalities (prepared with --allow-missing): train with model.modality_flags=true",
                            Path(data))
    dataset = PreparedSlices(prepared, train_ids, transforms=SliceAugment() if tc.augment else None, scheme=scheme,
                             context=context, planes=planes, modality_flags=cfg.model.modality_flags,
                             modality_dropout=tc.modality_dropout)
    if len(dataset) == 0:
        raise GliomaskError("no training slices in this split", Path(data))
    if all(dataset.is_negative):
        raise GliomaskError("no training patient has any tumour label in this split: nothing to learn lesions from",
                            Path(data))
    sampler = TumourBalancedSampler(dataset.is_negative, negative_share=tc.negative_share, seed=tc.seed,
                                    rank=rank, world_size=world)
    workers = loader_workers(tc.workers, device.type)
    loader = torch.utils.data.DataLoader(dataset, batch_size=tc.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=workers, drop_last=len(sampler) >= tc.batch_size,
                                         pin_memory=device.type == "cuda",  # so that .to(device, non_blocking=True) overlaps
                                         persistent_workers=workers > 0, worker_init_fn=ignore_stop_signals,
                                         # its own generator: drawing worker seeds must not move the global
                                         # RNG, which a resumed run's persistent workers would draw at another step
                                         generator=torch.Generator().manual_seed(tc.seed + rank))
    num_classes = len(CLASS_SCHEMES[scheme])
    model = model_from_config(cfg, num_classes, input_channels(len(prepared.settings["modalities"]), context,
                                                               cfg.model.modality_flags))
    weights_report = load_weights(model, cfg.model.weights, cfg.model.version) if cfg.model.weights and ckpt is None else None
    if world > 1 and tc.sync_bn and device.type != "cuda":
        raise GliomaskError("train.sync_bn=true needs CUDA (SyncBatchNorm is CUDA-only)")
    for name in RUN_FILES:  # a planted link must not redirect a log or a checkpoint, nor leave half a run folder
        if (out / name).is_symlink():
            raise GliomaskError("a symbolic link where the run writes; remove it or choose another --out", out / name)

    def write_run_folder() -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        stale = remove_stale_temporaries(out)
        if stale:
            say(out, f"removed {len(stale)} unfinished temporary file(s) left by an interrupted save in {out}: "
                + ", ".join(p.name for p in stale))
        # a resumed run adds its own line
        append_text(out / "command.txt", " ".join(command_line or sys.argv) + "\n")
        write_json(out / "env.json", {**versions(), "world_size": world, "device": str(device),
                                      "data": str(Path(data).resolve()), "fold": fold})
        if weights_report is not None:
            say(out, f"weights {cfg.model.weights}: {weights_report.summary()}")

    dist_utils.on_main(write_run_folder)  # its failure stops every rank

    model.to(device)
    if world > 1 and tc.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    core = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        core = model.module

    try:
        ema = weight_ema(core, tc.ema_decay)
    except ValueError as exc:
        raise GliomaskError(str(exc)) from None
    evaluated = ema.module if ema is not None else core  # validated, tuned and saved
    params = [p for p in core.parameters() if p.requires_grad]
    if tc.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    else:  # adamw (checked above)
        optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = max(len(loader), 1)
    if tc.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, tc.max_steps_per_epoch)
    post = PostProcessing.from_config(cfg.infer)
    val_kwargs = dict(scheme=scheme, context=context, batch_size=cfg.infer.batch_size, device=device,
                      amp=tc.amp and device.type == "cuda", dims=dims, flags=cfg.model.modality_flags)
    budget = tc.max_minutes * 60 if tc.max_minutes else None
    # train.max_minutes bounds the whole run: training leaves time for the final validation, estimated from a timed
    # batch (same on every rank), again every RESERVE_EVERY steps since a trained detector is faster than a new one.
    def loop_budget(first: bool = False) -> float | None:
        if not budget or not val_ids:
            return budget
        est = dist_utils.all_reduce_max(estimate_seconds(evaluated, prepared, val_ids, context=context, device=device, dims=dims,
              batch_size=cfg.infer.batch_size, flags=cfg.model.modality_flags, tta=cfg.infer.tta), device)  # slowest rank's
        reserve, capped = validation_reserve(est, budget)
        if first and capped and main:
            say(out, f"the final validation (about {est:.0f} s, a quarter more as margin) gets {reserve:.0f} s of the "
                     f"{budget:.0f} s budget, so that training keeps a quarter of it: the run may overrun train.max_minutes")
        return budget - reserve

    # train.lr is for one process's batch; under torchrun the global batch is world_size times larger and the
    # learning rate grows with it (the linear scaling rule, as torchvision's detection references scale theirs)
    base_lr = tc.lr * world
    if main and tc.workers is None and device.type == "cuda":
        say(out, f"data loader: {workers} worker process(es) per training process (train.workers)")
    if main and world > 1:
        say(out, f"{world} processes: global batch {tc.batch_size * world} ({tc.batch_size} per process), "
                 f"learning rate {base_lr:g} ({tc.lr:g} x {world}); each step uses the global batch")
    schedule = WarmupCosine(optimizer, base_lr=base_lr, warmup_steps=tc.warmup_steps,
                            total_steps=steps_per_epoch * tc.epochs,
                            max_seconds=loop_budget(first=True), min_ratio=tc.min_lr_ratio)
    use_amp = tc.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, elapsed_before, skip = 0, 0.0, 0
    if ckpt is not None:
        core.load_state_dict(ckpt.get("train_model", ckpt["model"]))
        if ema is not None and "ema" in ckpt:
            ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        restore_scaler(scaler, ckpt.get("scaler"))
        per_rank = ckpt.get("rng_per_rank") or []
        # each rank continues its own random stream (RoI sampling draws from it); an older checkpoint, or one
        # from another world size, has rank 0's only
        set_rng_state(per_rank[rank] if len(per_rank) == world else ckpt["rng"])
        start_epoch = int(ckpt["epoch"]) + 1
        skip = int((ckpt.get("partial_epoch") or {}).get("steps_done", 0))  # stopped by a signal mid-epoch
        elapsed_before = schedule.elapsed
        if main:
            say(out, f"resuming {out / 'last.pt'} at epoch {start_epoch}" + (f", step {skip} of it" if skip else ""))

    logger = Logger(out, main, tc.tensorboard)
    # a resumed run redoes what came after last.pt: log it once
    logger.keep_before(start_epoch, through_step=schedule.step_count if skip else None)
    t0 = time.monotonic() - elapsed_before
    last_val: dict = dict(ckpt.get("validation") or {}) if ckpt is not None else {}
    val_seconds = float(ckpt.get("val_seconds", 0.0)) if ckpt is not None else 0.0
    def save_checkpoints(epoch_done: int, finished: bool, tuned: PostProcessing, partial: dict | None = None) -> None:
        """last.pt (and, when ``finished``, best.pt) after ``epoch_done``; ``partial``: the epoch in progress
        and its steps done, when a signal stopped the run mid-epoch."""
        rng_per_rank = dist_utils.all_gather_object(rng_state())  # every rank takes part

        def write() -> None:
            state = {"optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                     "scaler": scaler.state_dict(), "epoch": epoch_done, "rng": rng_per_rank[0],
                     "rng_per_rank": rng_per_rank, "fold": fold, "val_seconds": val_seconds, "partial_epoch": partial}
            if ema is not None:  # resume needs the raw weights and the average
                state.update(train_model={k: v.detach().cpu() for k, v in core.state_dict().items()},
                             ema={k: v.detach().cpu() for k, v in ema.state_dict().items()})
            payload = checkpoint_payload(evaluated, cfg, prepared, post=tuned, fold=fold, train_ids=train_ids,
                                         val_ids=val_ids, extra={**state, "validation": last_val})
            save_checkpoint(payload, out / "last.pt")
            if finished:  # the final (averaged) weights with the post-processing chosen for them; no resume state
                save_checkpoint({k: v for k, v in payload.items() if k not in RESUME_ONLY}, out / "best.pt")

        dist_utils.on_main(write)  # a full disk on rank 0 stops every rank, not rank 0 alone

    stop = False
    epoch = start_epoch - 1
    stops = StopRequests().__enter__()  # SIGTERM / SIGINT: noted, acted on at a step boundary; undone below
    try:
        for epoch in range(start_epoch, tc.epochs):
            sampler.set_epoch(epoch, skip=skip * tc.batch_size if epoch == start_epoch else 0)
            model.train()
            bar = progress_bar(loader, total=steps_per_epoch, desc=f"epoch {epoch}", enabled=progress and main)
            loss_value = None
            first = skip if epoch == start_epoch else 0
            interrupted = None
            for step_in_epoch, (images, targets) in enumerate(bar, start=first):
                if step_in_epoch >= steps_per_epoch:
                    break
                images = [im.to(device, non_blocking=True) for im in images]
                targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
                lr = schedule.apply()
                with torch.autocast(device.type, enabled=use_amp):
                    loss_dict = model(images, targets)
                loss = sum(loss_dict.values())
                reduced = dist_utils.reduce_dict({k: v.detach() for k, v in loss_dict.items()})
                loss_value = float(sum(reduced.values()))
                if not math.isfinite(loss_value):
                    raise GliomaskError(
                        f"loss is {loss_value} at epoch {epoch}, step {schedule.step_count} "
                        f"({', '.join(f'{k}={float(v):.3g}' for k, v in reduced.items())}); "
                        "lower train.lr, raise train.warmup_steps or check the data")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if tc.clip_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, tc.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update_parameters(core)
                elapsed = dist_utils.all_reduce_max(time.monotonic() - t0, device) if budget else time.monotonic() - t0
                schedule.step(elapsed)
                if main and schedule.step_count % tc.log_every == 0:
                    logger.log({"type": "train", "epoch": epoch, "step": schedule.step_count, "lr": lr,
                                "loss": loss_value, **{k: float(v) for k, v in reduced.items()}, "seconds": elapsed})
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.4f}")
                if schedule.max_seconds and schedule.step_count % RESERVE_EVERY == 0:
                    schedule.max_seconds = loop_budget()
                if schedule.max_seconds and elapsed >= schedule.max_seconds:
                    stop = True
                    break
                signum = stops.agreed(device) if world > 1 or stops.signum else None
                if signum:
                    interrupted = (signum, step_in_epoch + 1)
                    break
            if hasattr(bar, "close"):
                bar.close()
            if interrupted:  # a signal: save where the run stands, mid-epoch, and stop (resumable)
                signum, steps_done = interrupted
                save_checkpoints(epoch - 1, False, post, partial={"epoch": epoch, "steps_done": steps_done})
                raise Preempted(f"stopped by {signal_name(signum)} at epoch {epoch}, step {schedule.step_count}: "
                                f"{out / 'last.pt'} saved; continue with `gliomask train --data {data} --out {out} "
                                "--resume`", signum)
            finished = stop or epoch == tc.epochs - 1
            elapsed = time.monotonic() - t0
            if main and loss_value is not None:
                say(out, f"epoch {epoch}: step {schedule.step_count}, loss {loss_value:.3f}, lr {lr:.4g}, "
                         f"{elapsed / 60:.1f} min")
            # Fixed-setting validation while training, only while it stays within train.val_share of the
            # wall time; the final one (below) always runs.
            if val_ids and not finished and (epoch + 1) % tc.val_every == 0:
                expected = last_val.get("seconds") or dist_utils.all_reduce_max(estimate_seconds(
                    evaluated, prepared, val_ids, context=context, batch_size=cfg.infer.batch_size, device=device, dims=dims,
                    flags=cfg.model.modality_flags), device)
                # one clock for all ranks: each rank's own could disagree and send the ranks into different collectives
                elapsed = dist_utils.all_reduce_max(elapsed, device)
                if val_seconds + expected <= tc.val_share * (elapsed + expected):
                    last_val = validate(evaluated, prepared, val_ids, post=post, **val_kwargs)
                    val_seconds += last_val["seconds"]
                    if main:
                        logger.log({"type": "val", "epoch": epoch, "step": schedule.step_count, **last_val, "elapsed": elapsed})
                        say(out, f"epoch {epoch}: validation Dice WT {last_val['dice_WT']:.3f} TC {last_val['dice_TC']:.3f} "
                            f"ET {last_val['dice_ET']:.3f} ({last_val['seconds']:.0f} s)")
            tuned = post
            if finished and val_ids:
                # as `predict` will run (infer.tta), so that the post-processing is chosen on the outputs it will get;
                # the validations while training stay one pass: they only follow the run
                last_val, outputs = validate(evaluated, prepared, val_ids, post=post, keep_outputs=True,
                                             tta=cfg.infer.tta, **val_kwargs)
                t_tune = time.monotonic()
                if cfg.infer.tune:
                    tuned, after = tune_postprocessing(outputs, post, deadline=t0 + budget if budget else None)
                else:
                    after = {k: v for k, v in last_val.items() if k.startswith("dice_")}
                del outputs
                last_val = {**last_val, "tuned": {k: v for k, v in after.items() if k.startswith("dice_")},
                            "tune_seconds": time.monotonic() - t_tune, "search_complete": after.get("search_complete", True)}
                val_seconds += last_val["seconds"] + last_val["tune_seconds"]
                if main:
                    logger.log({"type": "val", "epoch": epoch, "step": schedule.step_count, **last_val})
                    say(out, f"epoch {epoch}: validation Dice WT {last_val['dice_WT']:.3f} TC {last_val['dice_TC']:.3f} "
                        f"ET {last_val['dice_ET']:.3f} at default settings; after tuning WT {after['dice_WT']:.3f} "
                        f"TC {after['dice_TC']:.3f} ET {after['dice_ET']:.3f} (validation patients: tuning figures)"
                        + ("" if last_val["search_complete"] else "; search cut short by train.max_minutes"))
            save_checkpoints(epoch, finished, tuned)
            if epoch_end_hook is not None:
                epoch_end_hook(epoch)
            if stop:
                break
    finally:
        stops.__exit__()
        # Persistent DataLoader workers ignore SIGTERM (the training process stops them after saving): shut
        # them down here, or Python's exit, which ends its child processes with SIGTERM, would wait for them.
        shutdown = getattr(getattr(loader, "_iterator", None), "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
    summary = {"epochs_done": epoch + 1, "steps": schedule.step_count, "seconds": time.monotonic() - t0,
               "train_seconds": schedule.elapsed, "val_seconds": val_seconds, "validation": last_val,
               "best": str(out / "best.pt"), "last": str(out / "last.pt"), "world_size": world}
    if main:
        write_json(out / "summary.json", summary)
        val = last_val or {}
        line = (f"trained {summary['epochs_done']} epochs, {summary['steps']} steps in "
                f"{summary['train_seconds'] / 60:.1f} min ({summary['seconds'] / 60:.1f} min with validation)")
        if val:
            line += f"; validation Dice WT {val['dice_WT']:.3f} TC {val['dice_TC']:.3f} ET {val['dice_ET']:.3f}"
        summary["message"] = f"{line}; checkpoints in {out}"
        say(out, summary["message"])
        from gliomask.viz.curves import plot_curves

        plot_curves(out / "metrics.jsonl", out / "curves.png")
    if end_hook is not None:
        end_hook(evaluated)
    dist_utils.barrier()
    return summary
