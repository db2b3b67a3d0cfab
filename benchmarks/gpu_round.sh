#!/usr/bin/env bash
# The whole GPU round of one session, in one command (a lent H100/H200 gives 15 minutes in all):
#   first, side by side: the demo-model recipe (issue 13, trainer/gpu_recipe.sh) and the cohort
#   difficulty measurement with the 2D ResNet (issue 12, benchmarks/measure_cohort.py);
#   then, alone on the card: the CUDA tests and the inference/training/io benchmarks (issue 16).
# Results are packed into $OUT/results.tgz.* (split under the 16 MiB a file the device tool returns).
#   OUT=/tmp/out bash benchmarks/gpu_round.sh
# Knobs: ROUND_BUDGET_S (default 560), ROUND_BENCH_S (time kept for the benchmarks, default 170), ROUND_IO=0
# (skip bench_io), ROUND_TRAIN=0 (skip bench_train), ROUND_DIFFICULTY=0 (skip measure_cohort),
# ROUND_BENCH_FIRST=1 (benchmarks before the recipe, on a card nothing else uses yet),
# ROUND_SCALE=tiny for a CPU smoke test; the recipe's own knobs (RECIPE_*) pass through.
set -u
: "${OUT:?set OUT}"
export PYTHONUNBUFFERED=1
if ! python3 -c "import pydicom" 2>/dev/null && compgen -G ".whl/*.whl" > /dev/null; then  # the device machine lacks pydicom, eyepy, natsort, ...
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
BUDGET=${ROUND_BUDGET_S:-560}
T0=$(date +%s)
W=$(mktemp -d)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }

if [ "${ROUND_SCALE:-full}" = tiny ]; then
  MEASURE="--train-patients 8 --test-patients 6 --preset tiny --workers 2 --cnn --image-size 32 --epochs 1 --centres 4"
  export RECIPE_SCALE=tiny
  BENCH=0
else
  MEASURE="--train-patients 320 --test-patients 200 --workers 8 --cnn --init random --device cuda"
  BENCH=1
fi

benchmarks() {
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
    echo "== CUDA tests"; timeout 60 python -m pytest -q -p no:cacheprovider tests/test_model_predictor.py tests/test_model_heads.py
    echo "== bench_inference"; timeout 90 python benchmarks/bench_inference.py --device cuda --repeats ${ROUND_REPEATS:-7}
    if [ "${ROUND_TRAIN:-1}" = 1 ]; then echo "== bench_train"; timeout 60 python benchmarks/bench_train.py --device cuda --seconds 5 --volumes 12; fi
    if [ "${ROUND_IO:-1}" = 1 ]; then echo "== bench_io on 2 cores"; timeout 40 taskset -c 0,1 python benchmarks/bench_io.py --repeats 3; fi
  } > "$W/benchmarks.txt" 2>&1
  echo "benchmarks done at $(( $(date +%s) - T0 )) s"
}
if [ "$BENCH" = 1 ] && [ "${ROUND_BENCH_FIRST:-0}" = 1 ]; then benchmarks; BENCH=0; fi

PHASE2=$(( $(left) - ( BENCH == 1 ? ${ROUND_BENCH_S:-170} : 0 ) ))
echo "phase 2 gets $PHASE2 s"
( RECIPE_BUDGET_S=$PHASE2 RECIPE_MARGIN_S=${RECIPE_MARGIN_S:-40} OUT="$W/recipe" timeout --kill-after=10 "$PHASE2" bash trainer/gpu_recipe.sh \
    > "$W/recipe.log" 2>&1 ) &
if [ "${ROUND_DIFFICULTY:-1}" = 1 ]; then
  # shellcheck disable=SC2086
  ( timeout --kill-after=10 $(( PHASE2 - 10 )) python benchmarks/measure_cohort.py $MEASURE --out "$W/difficulty" \
      > "$W/difficulty.log" 2>&1 ) &
fi
wait
echo "phase 2 done at $(( $(date +%s) - T0 )) s"
if [ "$BENCH" = 1 ]; then benchmarks; fi

tar czf - --exclude=truth --exclude=volumes --exclude=cache -C "$W" . | split -b 15m -d - "$OUT/results.tgz."
ls -la "$OUT"
