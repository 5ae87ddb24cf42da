"""Run by scripts/check_wheel.sh with Tessera installed from the wheel, in a process that
cannot see /usr/lib/llvm-22: compiles a softmax spec to PTX, runs a CPU kernel against
float64, and times a cold compile and a cached load of one GPU kernel."""
import os
import sys
import tempfile
import time

import numpy as np

import tessera
from tessera import reference

assert "site-packages" in tessera.__file__, f"not the installed wheel: {tessera.__file__}"
print(f"tessera from {os.path.dirname(tessera.__file__)}")

spec = tessera.attention(causal=True, score_mod=lambda s, b, h, i, j: s - 0.125 * (i - j))
with tempfile.TemporaryDirectory() as cache:
    os.environ["TESSERA_CACHE_DIR"] = cache
    start = time.perf_counter()
    gpu = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    again = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
    cached = time.perf_counter() - start
    assert again.ptx == gpu.ptx
ptx = gpu.ptx.decode() if isinstance(gpu.ptx, bytes) else gpu.ptx
assert ".target sm_90a" in ptx and "wgmma.mma_async" in ptx, "no Hopper PTX"
print(f"PTX for sm_90a: {len(ptx.splitlines())} lines, "
      f"{ptx.count('wgmma.mma_async')} wgmma; cold compile {cold * 1e3:.0f} ms, "
      f"cached load {cached * 1e3:.1f} ms")

rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((2, 4, 77, 64)).astype(np.float32) for _ in range(3))
start = time.perf_counter()
cpu = tessera.compile(spec, head_dim=64)
compile_s = time.perf_counter() - start
out = np.full_like(q, np.nan)
cpu(q, k, v, out=out)
ref, _ = reference.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                          causal=True, score_mod=lambda s, b, h, i, j: s - 0.125 * (i - j))
err = reference.relative_error(out, ref)
print(f"CPU kernel (causal + ALiBi, N = 77, D = 64): relative error {err:.2e} against "
      f"float64, compiled in {compile_s * 1e3:.0f} ms")
from tessera import _runtime  # noqa: E402
has_driver, why = _runtime.driver_available()
if not has_driver:
    try:
        gpu(q, k, v)
        raise SystemExit("a CUDA kernel ran on a machine without a CUDA driver")
    except (TypeError, ValueError, RuntimeError) as e:
        assert "CUDA" in str(e) or "GPU" in str(e), e
        print(f"no CUDA driver here ({why.split(':')[0]}); calling the CUDA kernel: {e}")
sys.exit(0 if err <= 1e-5 else 1)
