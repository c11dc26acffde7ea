#!/usr/bin/env bash
# The first run of gliomask on a GPU machine, as one prepared script (at most about 8 minutes on one
# H100/H200): its printed tables are the README's GPU figures.
#
#   bash bench/gpu_smoke.sh                # on a CUDA machine
#   bash bench/gpu_smoke.sh --cpu-dry-run  # every stage that can run on a CPU, tiny budgets (< 5 min here)
#
# Stages: synthesise and prepare a few cases; the training loader's slices/s (1, 2, 4 workers) and the
# model step (MobileNet and ResNet-50 v2, AMP on and off: slices/s, peak memory); 1 minute of training
# with configs/gpu_resnet50_v2.yaml; one volume predicted on CUDA with AMP and fp32 (seconds, Dice
# between them, goal >= 0.99) and on the CPU; a 2-rank torchrun with validation (NCCL with 2 GPUs, gloo
# on the CPU otherwise); a resumed run.
#
# What the GPU machine lacks: it has torch, torchvision, numpy, scipy, matplotlib, pyyaml and tqdm, but
# not nibabel, pycocotools, surface-distance, connected-components-3d, isal or nilearn. Carry them as
# wheels for its Python (3.12, x86-64), from this repository's root on a machine with the package index:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl nibabel pycocotools surface-distance connected-components-3d isal
# (surface-distance is pure Python: add `--platform any` or download it without the platform options.)
# This script installs whatever lies in .whl into /tmp/site and runs gliomask from src/ (no pip install).
# The synthetic cases use the geometric head (--anatomy simple), which needs no nilearn.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ "${1:-}" == "--cpu-dry-run" ]] && DRY=1
OUT_DIR="${OUT:-bench/out}/gpu_smoke"
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
GM="$PY -m gliomask"
if [[ $DRY == 1 ]]; then
  DEVICE=cpu; CASES=3; MINUTES=0.3; STEPS=4; LOADER_BATCHES=10; WORKERS="0 1"; GPUS=0
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA: use --cpu-dry-run')"
  DEVICE=cuda; CASES=6; MINUTES=1; STEPS=12; LOADER_BATCHES=60; WORKERS="1 2 4"
  GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
fi
stage() { echo; echo "=== $1 ($(date +%T))"; }
T0=$SECONDS

stage "synthesise and prepare $CASES cases"
$GM synth --out "$OUT_DIR/brats" --cases "$CASES" --seed 2 --anatomy simple --quiet
$GM prepare --brats "$OUT_DIR/brats" --out "$OUT_DIR/prepared" --folds 3 --quiet

stage "loader and model step (slices/s)"
"$PY" bench/loader.py --cases 2 --workers $WORKERS --batches "$LOADER_BATCHES" --device "$DEVICE" --out "$OUT_DIR"
"$PY" bench/train.py --steps "$STEPS" --batch 4 --backbones mobilenet_v3_fpn resnet50_fpn --json "$OUT_DIR/train.json"

stage "train $MINUTES min with the GPU config"
$GM train --data "$OUT_DIR/prepared" --out "$OUT_DIR/run" --fold 0 --config configs/gpu_resnet50_v2.yaml --quiet \
  train.max_minutes="$MINUTES" train.device="$DEVICE" train.workers=2 train.val_every=1000 \
  $([[ $DRY == 1 ]] && echo "train.batch_size=2 train.max_steps_per_epoch=3 train.epochs=2 model.backbone=resnet18_fpn model.version=v1 model.box_head_dim=256 model.mask_head_layers=2")

stage "predict one volume: CUDA AMP and fp32, CPU"
CASE=$(ls -d "$OUT_DIR"/brats/*/* | head -1)
"$PY" bench/predict_devices.py "$OUT_DIR/run/best.pt" "$CASE" --devices $([[ $DRY == 1 ]] && echo cpu || echo cuda cpu) \
  --repeats $([[ $DRY == 1 ]] && echo 1 || echo 3) --out "$OUT_DIR"

stage "torchrun, 2 ranks, with validation and tuning"
if [[ $DRY == 0 && $GPUS -ge 2 ]]; then RANK_DEVICE=cuda; else RANK_DEVICE=cpu; fi
OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m gliomask train \
  --data "$OUT_DIR/prepared" --out "$OUT_DIR/ddp" --fold 0 --quiet train.device="$RANK_DEVICE" train.workers=0 \
  train.epochs=1 train.max_steps_per_epoch=3 train.batch_size=2 train.val_every=1
grep -E "processes: global batch|validation Dice" "$OUT_DIR/ddp/train.log"

stage "resume"
$GM train --data "$OUT_DIR/prepared" --out "$OUT_DIR/resume" --fold 0 --quiet train.device="$DEVICE" train.workers=0 \
  train.epochs=1 train.max_steps_per_epoch=3 train.batch_size=2 train.val_every=1000 infer.tune=false
$GM train --data "$OUT_DIR/prepared" --out "$OUT_DIR/resume" --resume --quiet train.epochs=2
grep -E "resuming|trained 2 epochs" "$OUT_DIR/resume/train.log"

stage "done in $((SECONDS - T0)) s; tables above, JSON in $OUT_DIR"
