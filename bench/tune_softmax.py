"""Times the softmax kernel under several tuning configs on the GPU (a first, manual
autotuning sweep): python3 bench/tune_softmax.py [--n 4096] [--d 64,128] [--kinds causal]"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
sys.path.insert(0, str(ROOT / "bench"))
import tessera  # noqa: E402

# (block_m, block_n, num_warps, num_stages, min_blocks)
# On sm_90a, configs with block_m = 16 x num_warps (num_warps a multiple of 4) and block_n
# a multiple of 64 use wgmma; the others mma.sync.
CONFIGS = [(64, 64, 4, 2, 0), (64, 128, 4, 2, 0), (128, 64, 8, 2, 0), (128, 128, 8, 2, 0),
           (128, 128, 8, 1, 0), (64, 64, 4, 1, 0), (64, 128, 4, 1, 0), (128, 32, 8, 2, 0),
           (128, 32, 4, 1, 0), (64, 64, 4, 2, 5), (64, 64, 4, 1, 5), (64, 64, 4, 1, 6),
           (64, 128, 4, 1, 5), (128, 64, 8, 1, 0)]
SPECS = {"full": tessera.attention(), "causal": tessera.attention(causal=True),
         "window": tessera.attention(causal=True, window=1024)}


def kernels():
    """Every (kind, d, config) the compiler takes (six blocks per SM leave too few
    registers at D = 128, which it reports)."""
    out = {}
    for kind in SPECS:
        for d in (64, 128):
            for cfg in CONFIGS:
                config = tessera.Config(block_m=cfg[0], block_n=cfg[1], num_warps=cfg[2],
                                        num_stages=cfg[3], min_blocks=cfg[4])
                try:
                    out[kind, d, cfg] = tessera.compile(SPECS[kind], head_dim=d, dtype="bfloat16",
                                                        target="cuda", config=config)
                except tessera.CompileError as e:
                    reason = next((line for line in str(e).splitlines() if "error" in line),
                                  str(e))
                    print(f"skipped {kind} d={d} {cfg}: {reason[:200]}")
    return out


def main():
    import torch
    from _common import time_ms
    from softmax_gpu import pairs
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--d", default="64,128")
    parser.add_argument("--kinds", default=",".join(SPECS))
    args = parser.parse_args()
    ks = kernels()
    n, h = args.n, 16
    b = 65536 // n
    for d in map(int, args.d.split(",")):
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for kind in args.kinds.split(","):
            for cfg in CONFIGS:
                if (kind, d, cfg) not in ks:
                    continue
                ms = time_ms(lambda: ks[kind, d, cfg](q, k, v), 10)
                flops = 4 * b * h * pairs(n, kind) * d
                print(json.dumps({"workload": f"softmax-{kind} d={d} n={n}", "config": cfg,
                                  "ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
