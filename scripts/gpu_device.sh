#!/usr/bin/env bash
# Runs on the GPU machine (no MLIR, no network) from the repository root, in one call:
# builds the runtime's Python module against the local Python, checks the runtime, runs
# the GPU tests and the benchmark. Kernels come from the carried cache (.gpu-cache),
# filled beforehand where the compiler is: TESSERA_CACHE_DIR=.gpu-cache python3 scripts/gpu_precompile.py
set -euo pipefail
# Takes no arguments (an unknown flag used to fall through to the whole ~10-minute run):
# SKIP_TESTS=1 SKIP_BENCH=1 only builds the runtime module.
if [ $# -ne 0 ]; then
  echo "usage: [SKIP_TESTS=1] [SKIP_BENCH=1] [GPU_TESTS=...] [BENCH=...] $0 (no arguments)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
export TESSERA_CACHE_DIR="$PWD/.gpu-cache" PYTHONUNBUFFERED=1
ext=$(python3 -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
g++ -O2 -std=c++17 -shared -fPIC -fexceptions -frtti $(python3 -m pybind11 --includes) -I. \
  frontend/bindings/RuntimeModule.cpp runtime/CudaDriver.cpp runtime/KernelCache.cpp \
  runtime/Module.cpp -o "frontend/tessera/_runtime$ext" -ldl
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
PYTHONPATH=frontend python3 -c "from tessera import _runtime as r; print('driver', r.driver_available(), r.device_name(), r.compute_capability())"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== GPU tests"
  PYTHONPATH=frontend python3 -m pytest -q -s ${GPU_TESTS:-test/gpu} ${GPU_TEST_ARGS:-} 2>&1 | tail -${GPU_TEST_TAIL:-60} || true
fi
# BENCH=softmax|linear|block_sparse|mask_mod|nsa|hyper|all (default all); BENCH_ARGS go to each benchmark. The linear and NSA
# benchmark's peers come from .peers/ (git-ignored; see bench/linear_gpu.py).
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  for bench in softmax linear block_sparse mask_mod nsa hyper; do
    case "${BENCH:-all}" in all|"$bench") ;; *) continue ;; esac
    echo "== benchmark: $bench"
    PYTHONPATH=frontend python3 "bench/${bench}_gpu.py" ${BENCH_ARGS:-}
  done
fi
