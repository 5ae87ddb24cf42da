"""Runs one linear-attention kernel (Lightning Attention-2, D = Dv = 128) a few times so
that a profiler can look at it (Nsight Compute on the GPU machine), e.g.

    ncu --clock-control none --section WarpStateStats -k regex:linear_attention -s 2 -c 1 \\
        python3 bench/profile_linear.py --n 4096 --b 16 --split 2

Prints the median time of the forward (or, --grad, the gradient). Its kernels are in
linear_gpu's set, so scripts/gpu_precompile.py puts them in the carried cache.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from linear_gpu import CONFIGS, D, H, SPEC  # noqa: E402


def main():
    import torch
    from _common import time_ms
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--b", type=int, default=16)
    ap.add_argument("--split", type=int, default=2)
    ap.add_argument("--grad", action="store_true")
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    config = CONFIGS[f"split={a.split} stages=2"]
    kernel = tessera.compile(SPEC, head_dim=D, dtype="bfloat16", target="cuda", config=config)
    q, k, v, g = (torch.randn(a.b, H, a.n, D, device="cuda", dtype=torch.bfloat16)
                  for _ in range(4))
    lam = torch.from_numpy(tessera.alibi_decay(H)).cuda()
    run = (lambda: kernel.grad(q, k, v, g, decay=lam)) if a.grad else \
        (lambda: kernel(q, k, v, decay=lam))
    ms = time_ms(run, a.iters)
    print(f"{'gradient' if a.grad else 'forward'} n={a.n} b={a.b} split={a.split}: "
          f"{ms:.3f} ms, {a.b * a.n / ms / 1e3:.1f} Mtok/s")


if __name__ == "__main__":
    main()
