#!/usr/bin/env bash
# README's first command: build Tessera, install its wheel with pip and run the examples on
# this machine on the CPU target (GPU runs: README, "On a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
python3 scripts/build_wheel.py
python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  dist/tessera-*.whl 2>&1 | grep -v "Running pip as" || true
cd examples && python3 run_all.py
