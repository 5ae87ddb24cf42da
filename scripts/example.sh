#!/usr/bin/env bash
# README's first command: install the tessera package with pip and run the examples on
# this machine on the CPU target (GPU runs: README, "On a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 -m pip install -q --disable-pip-version-check . 2>&1 | grep -v "Running pip as" || true
cd examples && python3 run_all.py
