"""Typed run configuration: dataclasses, a YAML file, and ``section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from gliomask.errors import GliomaskError


@dataclass
class ModelConfig:
    backbone: str = "mobilenet_v3_fpn"
    version: str = "v1"
    norm: str = "batch"
    box_head_dim: int = 256
    mask_head_layers: int = 2  # torchvision uses 4; with the budgets below a CPU step is 2x faster
    rpn_pre_nms_top_n_train: int = 300
    rpn_post_nms_top_n_train: int = 150
    rpn_pre_nms_top_n_test: int = 300
    rpn_post_nms_top_n_test: int = 30  # a slice holds a few lesions; 30 gave the same label maps as 100, 1 s faster
    box_batch_size_per_image: int = 32  # sampled RoIs per slice; torchvision's 512 is for COCO scenes
    box_detections_per_img: int = 10
    weights: typing.Optional[str] = None  # local .pth file, or "coco" to download where online
    region_head: bool = True  # dense WT/TC/ET head beside the detector (Panoptic FPN semantic branch)
    region_channels: int = 64
    detector: str = "lesions"  # lesions: one class, whole-tumour lesions as objects | scheme: the prepared classes
    context: int = 1  # neighbouring slices per side as extra input channels (2.5-D)
    planes: typing.List[str] = field(default_factory=list)  # slicing planes trained and fused; [] = the prepared axis
    modality_flags: bool = True  # one input channel per modality saying whether it is there: any subset predicts


@dataclass
class TrainConfig:
    epochs: int = 30
    max_minutes: typing.Optional[float] = None  # wall-clock budget; the schedule follows it
    max_steps_per_epoch: typing.Optional[int] = None  # cap on an epoch's length (quick runs)
    batch_size: int = 4
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02  # cosine decays to lr * min_lr_ratio
    clip_grad_norm: float = 10.0
    amp: bool = True  # CUDA only; ignored on CPU
    workers: typing.Optional[int] = None  # None: 1 on the CPU, more on a GPU (utils.loader_workers)
    negative_share: float = 0.15  # share of tumour-free slices in each epoch
    augment: bool = True
    modality_dropout: float = 0.2  # share of slices that hide a random subset of their modalities (model.modality_flags)
    ema_decay: float = 0.998  # weights averaged over ~1/(1-decay) steps for validation and checkpoints; 0 = off
    val_every: int = 1
    val_share: float = 0.1  # validation during training may take at most this share of wall time
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    tensorboard: bool = False
    sync_bn: bool = False
    threads: typing.Optional[int] = None  # CPU threads per process


@dataclass
class InferConfig:
    mask_threshold: float = 0.5
    region_thresholds: typing.List[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])  # WT, TC, ET
    score_thresholds: typing.Optional[typing.List[float]] = None  # per class, models without region head
    default_score_threshold: float = 0.5
    min_component_voxels: int = 20  # smaller 3-D components of a region are removed
    min_lesion_score: float = 0.5  # a 3-D lesion needs one detection at least this confident
    min_case_et_voxels: int = 0  # less ET in a whole case is relabelled core
    fill_holes: bool = True  # centres enclosed by tumour core join it (cross-validated on 9 real patients: TC +0.008)
    tune: bool = True  # choose the post-processing above on the validation fold at the end of training
    # each slice predicted as it is and flipped left-right, the two averaged: over nine real patients in
    # cross-validation (bench/real.py), TC and ET better on most patients at ~1.4x the prediction time
    tta: bool = True
    # WT from a second pass that sees these modalities only, when a case has more and some training cases had just
    # these (models with modality flags): over nine real patients in cross-validation, four of them FLAIR + T1ce
    # only, WT of the four-modality patients 0.666 -> 0.770, 5 of 5 better
    whole_tumour_modalities: typing.List[str] = field(default_factory=lambda: ["flair", "t1ce"])
    batch_size: int = 8


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "Config":
        cfg = cls()
        _merge(cfg, data or {}, source, prefix="")
        return cfg


def _coerce(value, tp, key: str, source: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key, source)
    if isinstance(value, str) and tp is not str:
        value = yaml.safe_load(value)
    if origin in (list, typing.List):
        if not isinstance(value, (list, tuple)):
            raise GliomaskError(f"{key} must be a list, got {value!r}", source)
        return [_coerce(v, args[0], key, source) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise GliomaskError(f"{key} must be true or false, got {value!r}", source)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GliomaskError(f"{key} must be an integer, got {value!r}", source)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GliomaskError(f"{key} must be a number, got {value!r}", source)
        return float(value)
    if tp is str:
        return str(value)
    return value


def _merge(obj, data: dict, source: str, prefix: str) -> None:
    if not isinstance(data, dict):
        raise GliomaskError(f"{prefix or 'config'} must be a mapping", source)
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise GliomaskError(f"unknown config key {full!r} (known: {', '.join(sorted(prefix + n for n in names))})", source)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, source, prefix=f"{full}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], full, source))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None) -> Config:
    """Defaults, then ``base`` (e.g. a checkpoint's config), then a YAML file, then ``key=value`` overrides."""
    if base and isinstance(base.get("model"), dict) and "modality_flags" not in base["model"]:
        base = {**base, "model": {**base["model"], "modality_flags": False}}  # saved before 0.2: no flag channels
    cfg = Config.from_dict(base or {}, "checkpoint") if base else Config()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GliomaskError(f"cannot read config ({exc})", path) from None
        _merge(cfg, data, str(path), "")
    for item in overrides or []:
        if "=" not in item:
            raise GliomaskError(f"override {item!r} must look like section.key=value")
        dotted, value = item.split("=", 1)
        parts = dotted.strip().split(".")
        nested: dict = {}
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
        _merge(cfg, nested, "command line", "")
    check_ranges(cfg, "command line" if overrides else str(path) if path else "config")
    return cfg


# key -> (lowest, highest, lowest included, highest included); None = unbounded on that side.
RANGES = {
    "model.context": (0, None, True, None), "model.region_channels": (1, None, True, None),
    "model.box_detections_per_img": (1, None, True, None), "model.rpn_post_nms_top_n_test": (1, None, True, None),
    "train.epochs": (1, None, True, None), "train.max_minutes": (0, None, False, None),
    "train.max_steps_per_epoch": (1, None, True, None), "train.batch_size": (1, None, True, None),
    "train.lr": (0, None, False, None), "train.momentum": (0, 1, True, False), "train.weight_decay": (0, None, True, None),
    "train.warmup_steps": (0, None, True, None), "train.min_lr_ratio": (0, 1, True, True),
    "train.clip_grad_norm": (0, None, True, None), "train.workers": (0, None, True, None),
    "train.negative_share": (0, 1, True, False), "train.modality_dropout": (0, 1, True, False), "train.ema_decay": (0, 1, True, False),
    "train.val_every": (1, None, True, None), "train.val_share": (0, 1, True, True), "train.log_every": (1, None, True, None),
    "train.threads": (1, None, True, None), "infer.mask_threshold": (0, 1, True, True),
    "infer.default_score_threshold": (0, 1, True, True), "infer.min_lesion_score": (0, 1, True, True),
    "infer.min_component_voxels": (0, None, True, None), "infer.min_case_et_voxels": (0, None, True, None),
    "infer.batch_size": (1, None, True, None),
}


def check_ranges(cfg: Config, source: str) -> None:
    """Values a type check lets through but no run can use (``train.lr=-0.1``, ``train.batch_size=0``)."""
    for key, (lo, hi, lo_in, hi_in) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is None:
            continue
        too_low = lo is not None and (value < lo if lo_in else value <= lo)
        too_high = hi is not None and (value > hi if hi_in else value >= hi)
        if too_low or too_high:
            span = (f"{'[' if lo_in else '('}{lo}, {hi}{']' if hi_in else ')'}" if hi is not None
                    else f"{'>=' if lo_in else '>'} {lo}")
            raise GliomaskError(f"{key} must be {span}, got {value}", source)
    from gliomask.io.brats import CANONICAL_MODALITIES

    unknown = [m for m in cfg.infer.whole_tumour_modalities if m not in CANONICAL_MODALITIES]
    if unknown:
        raise GliomaskError(f"infer.whole_tumour_modalities: unknown modality {', '.join(map(str, unknown))}; "
                            f"choose from {', '.join(CANONICAL_MODALITIES)}", source)
    for name in ("region_thresholds", "score_thresholds"):
        values = getattr(cfg.infer, name) or []
        if any(not 0 <= v <= 1 for v in values):
            raise GliomaskError(f"infer.{name} must lie in [0, 1], got {values}", source)


def save_config(cfg: Config, path: str | Path) -> None:
    from gliomask.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# What each key means: `gliomask config` prints it beside the default (a test checks every key has one).
HELP = {
    "model.backbone": "feature extractor: mobilenet_v3_fpn, resnet18_fpn, resnet34_fpn or resnet50_fpn",
    "model.version": "Mask R-CNN heads: v1, or v2 (Li et al. 2021 heads; ResNet backbones only)",
    "model.norm": "backbone normalisation: batch (from scratch) or frozen (with loaded weights)",
    "model.box_head_dim": "width of the box head's fully connected layers",
    "model.mask_head_layers": "convolutions in the mask head (torchvision uses 4; 2 is 2x faster on CPU)",
    "model.rpn_pre_nms_top_n_train": "region proposals kept before NMS, training",
    "model.rpn_post_nms_top_n_train": "region proposals kept after NMS, training",
    "model.rpn_pre_nms_top_n_test": "region proposals kept before NMS, prediction",
    "model.rpn_post_nms_top_n_test": "region proposals kept after NMS, prediction (30 gave the same maps as 100)",
    "model.box_batch_size_per_image": "sampled regions of interest per slice in training",
    "model.box_detections_per_img": "most detections kept per slice",
    "model.weights": "initial weights: a local .pth file, or coco to download where online; none = random",
    "model.region_head": "dense WT/TC/ET head beside the detector (Panoptic FPN semantic branch)",
    "model.region_channels": "channels of the dense region head",
    "model.detector": "lesions: one class, whole-tumour lesions as objects; scheme: the prepared classes",
    "model.context": "neighbouring slices per side added as input channels (2.5-D)",
    "model.planes": "slicing planes trained and fused at prediction; [] = the prepared axis only",
    "model.modality_flags": "one input channel per modality saying whether it is present, so that one model "
                            "predicts from any subset of its modalities (a case without T2, say)",
    "train.epochs": "passes over the training slices (the schedule follows max_minutes when set)",
    "train.max_minutes": "wall-clock training budget in minutes; none = no budget",
    "train.max_steps_per_epoch": "cap on an epoch's steps (quick runs); none = the whole epoch",
    "train.batch_size": "slices per step and process",
    "train.optimizer": "sgd or adamw",
    "train.lr": "peak learning rate for one process's batch; under torchrun it is multiplied by the number of "
                "processes (the global batch grows with them)",
    "train.momentum": "SGD momentum (AdamW beta1)",
    "train.weight_decay": "weight decay",
    "train.warmup_steps": "linear warm-up steps before the cosine decay",
    "train.min_lr_ratio": "the cosine decays to lr * min_lr_ratio",
    "train.clip_grad_norm": "gradient norm clipping; 0 = off",
    "train.amp": "mixed precision on CUDA (ignored on CPU)",
    "train.workers": "DataLoader worker processes per training process (null: 1 on the CPU; on a GPU the CPUs "
                     "left to each of the node's processes, less one, at most 8)",
    "train.negative_share": "share of tumour-free slices in each epoch",
    "train.augment": "flips, rotations, scaling and intensity augmentation",
    "train.modality_dropout": "share of training slices that hide a random subset of their modalities "
                              "(needs model.modality_flags)",
    "train.ema_decay": "exponential moving average of the weights for validation and checkpoints; 0 = off",
    "train.val_every": "validate every this many epochs",
    "train.val_share": "validation may take at most this share of the wall time",
    "train.log_every": "a metrics line every this many steps",
    "train.seed": "random seed (weights, sampling, augmentation)",
    "train.device": "auto, cpu, cuda or cuda:N (LOCAL_RANK under torchrun)",
    "train.tensorboard": "also write TensorBoard logs to the run folder",
    "train.sync_bn": "synchronised BatchNorm across processes (DDP)",
    "train.threads": "CPU threads per process; none = the CPUs this process may use / local processes",
    "infer.mask_threshold": "mask probability above which a pixel belongs to a detected lesion",
    "infer.region_thresholds": "WT, TC, ET probability thresholds of the region head",
    "infer.score_thresholds": "per-class detection score thresholds (models without region head); none = default",
    "infer.default_score_threshold": "detection score threshold when score_thresholds is none",
    "infer.min_component_voxels": "smaller 3-D components of a region are removed",
    "infer.min_lesion_score": "a 3-D lesion needs one detection at least this confident",
    "infer.min_case_et_voxels": "less enhancing tumour in a whole case is relabelled tumour core",
    "infer.fill_holes": "centres enclosed by tumour core (or whole tumour) join it, in 3-D and slice by slice",
    "infer.whole_tumour_modalities": "the whole tumour comes from a second pass that sees only these modalities, "
                                     "when a case has more and some training cases had just these (models with "
                                     "modality flags; [] for one pass)",
    "infer.tune": "choose the post-processing on the validation fold at the end of training",
    "infer.tta": "flip test-time augmentation at prediction (gliomask predict --tta / --no-tta overrides it)",
    "infer.batch_size": "slices per forward pass at prediction",
}


def describe_keys() -> list[tuple[str, object, str]]:
    """Every configuration key as (``section.key``, default, help), in declaration order."""
    rows = []
    defaults = Config()
    for section in dataclasses.fields(defaults):
        for f in dataclasses.fields(getattr(defaults, section.name)):
            key = f"{section.name}.{f.name}"
            rows.append((key, getattr(getattr(defaults, section.name), f.name), HELP.get(key, "")))
    return rows
