"""Runs one softmax backward (kernel.grad) a few times so that a profiler can look at its
grids (Nsight Compute on the GPU machine), e.g.

    ncu --clock-control none --metrics <list> -k regex:attention_grad -c 6 \\
        python3 bench/profile_softmax_bwd.py --kind causal --d 128 --n 16384

(scripts/ncu_backward.sh runs it with the metrics the closing notes quote.) Prints the
backward's median time and TFLOP/s (the backward alone: 2.5 forwards' products).
"""
import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from tessera.gpu import default_grad_config  # noqa: E402

SPECS = {"full": tessera.attention(), "causal": tessera.attention(causal=True)}


def main():
    import torch
    from _common import time_ms
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=sorted(SPECS), default="causal")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--h", type=int, default=16)
    ap.add_argument("--grad-dq-atomic", action="store_true")
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    kernel = tessera.compile(SPECS[a.kind], head_dim=a.d, dtype="bfloat16", target="cuda")
    if a.grad_dq_atomic:
        kernel.grad_config = dataclasses.replace(
            default_grad_config(a.d, a.d, kernel.chip), grad_dq_atomic=True)
    b = max(1, 65536 // a.n)
    q, k, v, g = (torch.randn(b, a.h, a.n, a.d, device="cuda", dtype=torch.bfloat16)
                  for _ in range(4))
    o, lse = kernel(q, k, v, return_lse=True)
    ms = time_ms(lambda: kernel.grad(q, k, v, o, lse, g), iters=a.iters)
    pairs = a.n * a.n if a.kind == "full" else a.n * (a.n + 1) // 2
    print(f"backward {a.kind} d={a.d} n={a.n} b={b}: {ms:.3f} ms, "
          f"{2.5 * 4 * b * a.h * pairs * a.d / ms / 1e9:.1f} TFLOP/s")


if __name__ == "__main__":
    main()
