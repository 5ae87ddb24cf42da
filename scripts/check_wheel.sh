#!/usr/bin/env bash
# Part of README's test command: builds the wheel, checks that every shared object in it
# needs nothing beyond glibc, libstdc++, libm and libgcc_s, installs it into a fresh
# virtual environment and, in a mount namespace where /usr/lib/llvm-22 is hidden (where
# the machine allows one; else the DT_NEEDED check alone stands), compiles a spec to PTX
# and runs a CPU kernel (test/wheel/smoke.py). Then rebuilds the Python layers the way
# another Python would on first import, and times it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/wheel-check
rm -rf "$out" && mkdir -p "$out"
start=$(date +%s)
python3 scripts/build_wheel.py --out "$out/dist"
wheel=$(ls "$out"/dist/tessera-*.whl)
echo "wheel built in $(( $(date +%s) - start )) s"

echo "== shared objects in the wheel and what they need"
mkdir -p "$out/unpacked" && python3 -m zipfile -e "$wheel" "$out/unpacked"
allowed="libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 libdl.so.2 libpthread.so.0 librt.so.1"
bad=0
while IFS= read -r so; do
  needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "  ${so#"$out"/unpacked/}: $needed"
  for lib in $needed; do
    case " $allowed libtessera-compiler.so " in *" $lib "*) ;; *) echo "    not allowed: $lib"; bad=1 ;; esac
  done
done < <(find "$out/unpacked" -name '*.so' | sort)
[ "$bad" = 0 ] || { echo "a shared object in the wheel needs a library outside glibc/libstdc++/libm/libgcc_s"; exit 1; }

echo "== installed into a fresh virtual environment"
python3 -m venv --system-site-packages "$out/venv"   # numpy and pybind11 from this machine
py="$root/$out/venv/bin/python"
"$py" -m pip install -q --no-deps --no-index "$wheel" 2>&1 | grep -v "as the 'root' user" || true
smoke=(env -u PYTHONPATH -u TESSERA_OPT "$py" "$root/test/wheel/smoke.py")
if unshare -m --propagation private true 2>/dev/null; then
  echo "== smoke test with /usr/lib/llvm-22 hidden (private mount namespace)"
  (cd /tmp && unshare -m --propagation private sh -c \
    'mount -t tmpfs none /usr/lib/llvm-22 && [ -z "$(ls /usr/lib/llvm-22)" ] && exec "$@"' sh "${smoke[@]}")
else
  echo "== smoke test (no mount namespace on this machine: the DT_NEEDED check above stands for hiding LLVM)"
  (cd /tmp && "${smoke[@]}")
fi

echo "== the Python layers rebuilt as another Python builds them on first import"
site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
rm -f "$site"/tessera/_core.*.so "$site"/tessera/_runtime.*.so
(cd /tmp && env -u PYTHONPATH "$py" -c "import tessera, numpy as np; k = tessera.compile(tessera.attention(), head_dim=16); q = np.ones((1, 1, 3, 16), np.float32); print('rebuilt layers run a kernel:', float(k(q, q, q).sum()))")

other=""
for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python3 python3.13; do
  # (a pyenv shim is on PATH whether or not it runs)
  if "$candidate" -c "import venv" >/dev/null 2>&1; then other=$(command -v "$candidate"); break; fi
done
if [ -n "$other" ]; then
  echo "== under another Python ($("$other" --version)): the wheel installed, its layers built on first import"
  "$other" -m venv "$out/venv-other"
  "$out/venv-other/bin/python" -m pip install -q --disable-pip-version-check numpy pybind11 \
    "$wheel" 2>&1 | grep -v "as the 'root' user" || true
  (cd /tmp && env -u PYTHONPATH -u TESSERA_OPT "$root/$out/venv-other/bin/python" "$root/test/wheel/smoke.py")
else
  echo "== no second Python on this machine: the rebuild above stands for another Python's"
fi
