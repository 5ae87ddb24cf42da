"""Times the softmax kernel under several tuning configs on the GPU (a first, manual
autotuning sweep): python3 bench/tune_softmax.py"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "frontend"))
sys.path.insert(0, str(ROOT / "bench"))
import tessera  # noqa: E402

# (block_m, block_n, num_warps, num_stages)
# On sm_90a, configs with block_m = 16 x num_warps (num_warps a multiple of 4) and block_n
# a multiple of 64 use wgmma; the others mma.sync.
CONFIGS = [(64, 64, 4, 2), (64, 128, 4, 2), (128, 64, 8, 2), (128, 128, 8, 2), (128, 128, 8, 1), (64, 64, 4, 1), (64, 128, 4, 1),
           (128, 32, 8, 2), (128, 32, 4, 1)]
SPECS = {"full": tessera.attention(), "causal": tessera.attention(causal=True),
         "window": tessera.attention(causal=True, window=1024)}


def kernels():
    return {(kind, d, cfg): tessera.compile(
        SPECS[kind], head_dim=d, dtype="bfloat16", target="cuda",
        config=tessera.Config(block_m=cfg[0], block_n=cfg[1], num_warps=cfg[2],
                              num_stages=cfg[3]))
        for kind in SPECS for d in (64, 128) for cfg in CONFIGS}


def main():
    import torch
    from _common import time_ms
    from softmax_gpu import pairs
    ks = kernels()
    n, b, h = 4096, 16, 16
    for d in (64, 128):
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for kind in SPECS:
            for cfg in CONFIGS:
                ms = time_ms(lambda: ks[kind, d, cfg](q, k, v), 10)
                flops = 4 * b * h * pairs(n, kind) * d
                print(json.dumps({"workload": f"softmax-{kind} d={d} n={n}", "config": cfg,
                                  "ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
