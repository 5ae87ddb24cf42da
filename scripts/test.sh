#!/usr/bin/env bash
# README's test command: install, build, then the lit suite and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
echo "== lit =="
/usr/lib/llvm-22/bin/lit -sv build/test
echo "== pytest =="
PYTHONPATH="$PWD/frontend" TESSERA_OPT="$PWD/build/bin/tessera-opt" \
  python3 -m pytest -q test/python
echo "== wheel =="
bash scripts/check_wheel.sh
