#!/usr/bin/env bash
# Runs on the GPU machine (no MLIR, no network) from the repository root, in one call.
# With a wheel carried in dist/ (python3 scripts/build_wheel.py here), installs it into the
# machine's Python and compiles every kernel there, from an empty kernel cache unless
# TESSERA_CACHE_DIR names one. Without a wheel, the older flow: builds the runtime's
# module from the tree and takes kernels from a carried cache (.gpu-cache), filled where
# the compiler is (TESSERA_CACHE_DIR=.gpu-cache python3 scripts/gpu_precompile.py).
# Then runs the GPU tests and the benchmarks.
set -euo pipefail
# Takes no arguments (an unknown flag used to fall through to the whole ~10-minute run):
# SKIP_TESTS=1 SKIP_BENCH=1 only installs / builds.
if [ $# -ne 0 ]; then
  echo "usage: [SKIP_TESTS=1] [SKIP_BENCH=1] [GPU_TESTS=...] [BENCH=...] $0 (no arguments)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
wheel=$(ls dist/tessera-*.whl 2>/dev/null | tail -1 || true)
if [ -n "$wheel" ]; then
  site="${TESSERA_SITE:-/tmp/tessera-site}"
  rm -rf "$site"
  echo "== installing $wheel into $site ($(python3 --version))"
  if ! python3 -m pip install -q --no-deps --no-index --target "$site" "$wheel" >/tmp/pip.log 2>&1; then
    cat /tmp/pip.log; python3 -m zipfile -e "$wheel" "$site"   # a wheel is a zip
  fi
  export PYTHONPATH="$site" TESSERA_CACHE_DIR="${TESSERA_CACHE_DIR:-$(mktemp -d)}"
  # The first import builds the pybind11 layers for this Python (tessera/_native.py).
  python3 -c "import time; t = time.perf_counter(); import tessera; \
print(f'== tessera imported in {time.perf_counter() - t:.1f} s from {tessera.__file__}')"
  echo "== kernel cache $TESSERA_CACHE_DIR: $(ls "$TESSERA_CACHE_DIR" | wc -l) entries"
else
  export TESSERA_CACHE_DIR="$PWD/.gpu-cache" PYTHONPATH=frontend
  # The runtime's module, by the command (and source list) tessera/_native.py builds it with.
  python3 -c "import importlib.util as u, subprocess, pathlib as p; \
s = u.spec_from_file_location('tessera_native', 'frontend/tessera/_native.py'); \
n = u.module_from_spec(s); s.loader.exec_module(n); \
subprocess.run(n.build_command('_runtime', p.Path('frontend/tessera'), p.Path('.'), \
p.Path('frontend/tessera')), check=True)"
fi
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
python3 -c "from tessera import _runtime as r; print('driver', r.driver_available(), r.device_name(), r.compute_capability())"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== GPU tests"
  # The benchmarks still run after a failure; the status line says whether there was one
  # (the tail alone can cut the summary off).
  status=0
  python3 -m pytest -q -s ${GPU_TESTS:-test/gpu} ${GPU_TEST_ARGS:-} 2>&1 | tail -${GPU_TEST_TAIL:-60} || status=$?
  echo "== GPU tests: pytest exit status $status"
fi
# BENCH=softmax|softmax_bwd|linear|block_sparse|mask_mod|nsa|hyper|host_overhead|all (default all);
# BENCH_ARGS go to each benchmark. The linear and NSA benchmark's peers come from .peers/
# (git-ignored; see bench/linear_gpu.py). host_overhead: host µs per call (torch ops).
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  for bench in softmax softmax_bwd linear block_sparse mask_mod nsa hyper host_overhead; do
    case "${BENCH:-all}" in all|"$bench") ;; *) continue ;; esac
    echo "== benchmark: $bench"
    script="bench/${bench}_gpu.py"
    [ -f "$script" ] || script="bench/${bench}.py"
    python3 "$script" ${BENCH_ARGS:-}
  done
fi
