#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and TensorRT 10+ (pip install -e '.[gpu]'): build TensorRT
# plans from the INT8 QDQ reference models, compare them with ONNX Runtime on the held-out
# calibration windows, and print INT8 and FP16 latency per window.
#
#   bash benchmarks/gpu_check.sh [driver-av home-av]
#
# Needs the calibration sets (edge calibrate, see calibration/README.md) and the INT8 models
# (edge build --int8). Results go to benchmarks/results/gpu-<model>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
models=("${@:-driver-av home-av}")
for name in ${models[@]}; do
    task=${name%-av}
    onnx=engines/$name.int8.onnx
    calib=calibration/$task-sim
    [ -f "$onnx" ] || { echo "missing $onnx: edge build --model engines/$name.onnx --int8 --calibration $calib"; exit 2; }
    [ -f "$calib/manifest.json" ] || { echo "missing $calib: see calibration/README.md"; exit 2; }
    $PY -m edge.cli build --check-trt "$onnx"
    $PY -m edge.cli build --model "$onnx" --trt --out "engines/$name.int8.plan"
    $PY -m edge.cli build --model "engines/$name.onnx" --trt --fp16 --out "engines/$name.fp16.plan"
    $PY -m edge.cli compare "$onnx" "engines/$name.int8.plan" --data "$calib" \
        --json > "benchmarks/results/gpu-$name.json"
    $PY -m edge.cli compare "$onnx" "engines/$name.int8.plan" --data "$calib"
    $PY -m edge.cli compare "engines/$name.onnx" "engines/$name.fp16.plan" --data "$calib"
done
