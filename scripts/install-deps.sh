#!/usr/bin/env bash
# Installs everything Tessera needs on a Debian 12 machine (idempotent, quiet when done).
set -euo pipefail
need_apt=0
for pkg in libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools ninja-build cmake g++ lld \
           libzstd-dev zlib1g-dev python3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libmlir-22-dev mlir-22-tools \
    llvm-22-dev llvm-22-tools ninja-build cmake g++ lld libzstd-dev zlib1g-dev python3-dev
fi
python3 -m pip install -q --disable-pip-version-check numpy pytest pybind11 \
  scikit-build-core lit 2>&1 | grep -v "Running pip as the 'root' user" || true
# torch for the torch custom ops' tests (test_torch_cpu.py) and the GPU tests: PyPI's wheel
# with its CUDA libraries, about 3 GB to download (55 s on the dev machine; nothing to do
# once installed).
python3 -m pip install -q --disable-pip-version-check torch 2>&1 \
  | grep -v "Running pip as the 'root' user" || true
python3 -c "import torch" || { echo "torch did not install" >&2; exit 1; }
