#!/usr/bin/env bash
# Configures and builds tessera-opt, the lit suite and the in-place Python module in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  cmake -G Ninja -B build -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    -DLLVM_USE_LINKER=lld -DPython_EXECUTABLE="$(command -v python3)"
fi
ninja -C build tessera-opt tessera-compiler _core _runtime tessera-runtime-tests tessera-runtime-smoke
