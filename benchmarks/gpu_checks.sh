#!/usr/bin/env bash
# One GPU session (< 3 min on an H100/H200): the model's CUDA tests, then the inference and training
# benchmarks with their splits and ratios (issue 16 items 2-3). Run from the repository root.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "== CUDA tests (Predictor immutability, GPU path vs CPU, fused heads)"
timeout 90 python -m pytest -q -p no:cacheprovider tests/test_model_predictor.py tests/test_model_heads.py
echo "== bench_inference (Cirrus-sized volume, semt)"
timeout 80 python benchmarks/bench_inference.py --device cuda --repeats 7
echo "== bench_train (semt vs ResNet18, pipeline)"
timeout 100 python benchmarks/bench_train.py --device cuda --seconds 6 --volumes 12
