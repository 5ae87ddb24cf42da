"""Runs one softmax kernel a few times so that a profiler can look at it (Nsight Compute
on the GPU machine), e.g.

    ncu --clock-control none --set full -k regex:tessera -s 2 -c 1 -o prof \\
        python3 bench/profile_softmax.py --kind full --d 128 --config 64,64,4,1

Prints the kernel's median time and TFLOP/s. Its kernels are in tune_softmax's set, so
scripts/gpu_precompile.py puts them in the carried cache.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from tune_softmax import SPECS  # noqa: E402


def main():
    import torch
    from _common import time_ms
    from softmax_gpu import pairs
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=sorted(SPECS), default="full")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--b", type=int, default=4)
    ap.add_argument("--h", type=int, default=16)
    ap.add_argument("--config", default="64,64,4,1",
                    help="block_m,block_n,num_warps,num_stages")
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    bm, bn, warps, stages = (int(x) for x in a.config.split(","))
    kernel = tessera.compile(SPECS[a.kind], head_dim=a.d, dtype="bfloat16", target="cuda",
                             config=tessera.Config(block_m=bm, block_n=bn, num_warps=warps,
                                                   num_stages=stages))
    q, k, v = (torch.randn(a.b, a.h, a.n, a.d, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    ms = time_ms(lambda: kernel(q, k, v), a.iters)
    flops = 4 * a.b * a.h * pairs(a.n, a.kind) * a.d
    print(f"{a.kind} d={a.d} n={a.n} b={a.b} config={a.config}: {ms:.3f} ms, "
          f"{flops / ms / 1e9:.1f} TFLOP/s")


if __name__ == "__main__":
    main()
