"""What the examples share: random inputs, timing, and the line each one prints."""
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tessera
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
    import tessera

from tessera import reference


def random_qkv(B=1, H=4, N=512, D=64, Hk=None, seed=0):
    """Random normal float32 q [B, H, N, D] and k, v [B, Hk, N, D]."""
    rng = np.random.default_rng(seed)
    Hk = H if Hk is None else Hk
    return (rng.standard_normal((B, H, N, D), dtype=np.float32),
            rng.standard_normal((B, Hk, N, D), dtype=np.float32),
            rng.standard_normal((B, Hk, N, D), dtype=np.float32))


def run(name, kernel, q, k, v, reference_kwargs, repeats=3, **buffers):
    """Times kernel(q, k, v) (best of `repeats`, after one warm-up call), checks it against
    the float64 reference and prints one line. Returns the relative error."""
    out = kernel(q, k, v, **buffers)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        kernel(q, k, v, out=out, **buffers)
        best = min(best, time.perf_counter() - start)
    ref, _ = reference.attention(q, k, v, **reference_kwargs)
    err = reference.relative_error(out, ref)
    B, H, N, D = q.shape
    print(f"{name:<15} B={B} H={H:<2} Hk={k.shape[1]:<2} N={N:<5} D={D:<4} "
          f"relative error {err:.2e}  {best * 1e3:7.1f} ms")
    return err
