#!/usr/bin/env bash
# One-shot GPU run of the issue-13 recipe (run ONCE, from the repository root):
#   1. the v2 synthetic cohort (training) and a held-out cohort from another seed,
#   2. the demo SEMT model (alpha grid, Platt calibration, gap-midpoint threshold; bf16 autocast on
#      the GPU; half-precision file, reg_channels 64 so the file stays under 25 MB),
#   3. its evaluation on the held-out cohort through the viewer's Predictor,
#   4. a reduced ablation (Part and All rows, two seeds) with whatever time is left.
# Everything goes under $OUT; timings.txt says how long each step took, summary.md what came out.
#
#   OUT=/path/to/out bash trainer/gpu_recipe.sh                      # H200/H100, about 8 minutes
#   RECIPE_SCALE=tiny OUT=/tmp/r bash trainer/gpu_recipe.sh          # CPU smoke test (tests/)
#
# Knobs (environment): RECIPE_BUDGET_S (whole script, default 480 s; the ablation gets what is left
# minus RECIPE_MARGIN_S), PYTHON (default python), RECIPE_PATIENTS, RECIPE_HELDOUT, RECIPE_PRESET, RECIPE_FIT and
# RECIPE_ABL (the fit/ablation options of the full scale), RECIPE_ABLATION=0 (no ablation).
# ImageNet weights cannot be downloaded on the GPU machine, so every model starts from random
# initialisation (the same for MT and SEMT: the fair-initialisation rule).
set -euo pipefail
: "${OUT:?set OUT to the output folder}"
PY=${PYTHON:-python}
SCALE=${RECIPE_SCALE:-full}
BUDGET_S=${RECIPE_BUDGET_S:-480}
MARGIN_S=${RECIPE_MARGIN_S:-20}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$SCALE" = tiny ]; then
  PRESET=${RECIPE_PRESET:-tiny}; PATIENTS=${RECIPE_PATIENTS:-12}; HELDOUT=6
  FIT="--image-size 32 --stage1-epochs 1 --epochs 1 --bscans-per-volume 2 --batch-size 16 --alpha-grid 0.5 2 --reg-channels 8"
  ABL="--image-size 32 --stage1-epochs 1 --epochs 1 --bscans-per-volume 2 --batch-size 16 --volume-shape 8 32 16 --reg-channels 8"
  ABL_VARIANTS="resnet2d mt semt cnn3d"; ABL_SEEDS="0"; DEVICE=cpu
else
  # the shipped demo model's settings (resources/models/README.md): 172 s of fitting on an H100
  PRESET=${RECIPE_PRESET:-small}; PATIENTS=${RECIPE_PATIENTS:-400}; HELDOUT=${RECIPE_HELDOUT:-80}
  FIT=${RECIPE_FIT:-"--image-size 160 --stage1-epochs 5 --epochs 6 --bscans-per-volume 16 --batch-size 64 \
--alpha-grid 0.1 0.3 --reg-channels 64"}
  ABL=${RECIPE_ABL:-"--image-size 96 --stage1-epochs 4 --epochs 4 --bscans-per-volume 16 --batch-size 64 \
--volume-shape 64 128 64 --reg-channels 32"}
  ABL_VARIANTS="resnet2d mt semt cnn3d resnet3d"; ABL_SEEDS="0 1"; DEVICE=auto
fi

step() {  # step NAME COMMAND...: run, time, log; a failed step is recorded and the script goes on
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== $name: $*" >> "$OUT/commands.txt"
  if "$@" > "$OUT/$name.log" 2>&1; then status=ok; else status="failed ($?)"; fi
  echo "$name $(( $(date +%s) - t0 )) s $status" | tee -a "$OUT/timings.txt"
}
synth() { "$PY" -c 'import sys; from octviewer.cli import synth_main; sys.exit(synth_main(sys.argv[1:]))' "$@"; }

{ echo "started $(date -u +%FT%TZ) scale=$SCALE"; "$PY" -c 'import torch; print("torch", torch.__version__,
  "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")'
  nproc; } > "$OUT/machine.txt" 2>&1

step cohort synth --out "$OUT/cohort" --patients "$PATIENTS" --preset "$PRESET" --seed 2026 --workers "$(nproc)"
step heldout synth --out "$OUT/heldout" --patients "$HELDOUT" --preset "$PRESET" --seed 7 --workers "$(nproc)"
# shellcheck disable=SC2086
step demo_fit "$PY" -m trainer fit --data "$OUT/cohort/manifest.csv" --out "$OUT/demo" --variant semt \
  --init random --seed 0 --half --device "$DEVICE" --progress-json "$OUT/demo_progress.jsonl" $FIT
step demo_heldout "$PY" -m trainer evaluate --model "$OUT/demo/model.safetensors" \
  --data "$OUT/heldout/manifest.csv" --split all --device "$DEVICE" --out "$OUT/demo/heldout_eval.json" --attach

LEFT=$(( BUDGET_S - ($(date +%s) - START) - MARGIN_S ))
if [ "${RECIPE_ABLATION:-1}" != 1 ]; then
  echo "ablation skipped: RECIPE_ABLATION=${RECIPE_ABLATION}" | tee -a "$OUT/timings.txt"
elif [ "$LEFT" -gt 30 ]; then
  # shellcheck disable=SC2086
  step ablation timeout --signal=TERM --kill-after=15 "$LEFT" "$PY" -m trainer ablation --data "$OUT/cohort/manifest.csv" \
    --out "$OUT/ablation" --variants $ABL_VARIANTS --train-set both --seeds $ABL_SEEDS --init random \
    --device "$DEVICE" $ABL
else
  echo "ablation skipped: ${LEFT} s left" | tee -a "$OUT/timings.txt"
fi
# keep what comes back small: volumes, caches and checkpoints are regenerable; of the models only the demo
rm -rf "$OUT"/cohort/volumes "$OUT"/heldout/volumes "$OUT"/demo/cache "$OUT"/ablation/cache
find "$OUT" -name '*.pt' -delete
find "$OUT/ablation" -name model.safetensors -delete 2>/dev/null || true
"$PY" -m trainer.recipe_summary "$OUT" > "$OUT/summary.md" 2>> "$OUT/timings.txt" || true
echo "total $(( $(date +%s) - START )) s" | tee -a "$OUT/timings.txt"
