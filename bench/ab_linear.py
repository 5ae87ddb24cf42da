"""Times the linear-attention kernels of two compilers side by side in one process: the
kernels in $TESSERA_CACHE_DIR (this checkout's compiler) against those of a cache made
before a change (its FINGERPRINT names that compiler), interleaved round by round so that
both see the same GPU state. For effects of a few percent, which separate runs hide.

    git stash; build; TESSERA_CACHE_DIR=.gpu-cache-base python3 scripts/gpu_precompile.py \\
        --only linear_gpu; git stash pop; build; precompile .gpu-cache as usual
    # on the GPU machine, carrying .gpu-cache and .gpu-cache-base:
    python3 bench/ab_linear.py --base .gpu-cache-base [--splits 2,4,16]

Prints, per shape and split, the fastest forward and gradient time of each.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from tessera import gpu, launch  # noqa: E402
from linear_gpu import CONFIGS, D, H, SPEC, TOKENS  # noqa: E402

SHAPES = (1024, 4096, 16384, 65536)


def kernels(cache, fingerprint, splits):
    """The forward kernels (their gradients loaded too) of one compiler's cache."""
    os.environ["TESSERA_CACHE_DIR"] = str(cache)
    launch.COMPILER_VERSION = fingerprint  # the cache key load_image uses
    out = {}
    for split in splits:
        kernel = tessera.compile(SPEC, head_dim=D, dtype="bfloat16", target="cuda",
                                 config=CONFIGS[f"split={split} stages=2"])
        kernel.grad_image()
        out[split] = kernel
    return out


def main():
    import torch
    from _common import time_ms
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="cache of the compiler before the change")
    ap.add_argument("--splits", default="2,4,16")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    splits = [int(s) for s in a.splits.split(",")]
    base_fingerprint = (Path(a.base) / "FINGERPRINT").read_text().strip()
    this_cache, this_fingerprint = gpu.cache_dir(), gpu.COMPILER_VERSION
    variants = {"base": kernels(a.base, base_fingerprint, splits),
                "this": kernels(this_cache, this_fingerprint, splits)}
    lam = torch.from_numpy(tessera.alibi_decay(H)).cuda()
    for n in SHAPES:
        b = max(1, TOKENS // n)
        q, k, v, g = ((torch.randn(b, H, n, D, device="cuda") * D ** -0.5).bfloat16()
                      for _ in range(4))
        for split in splits:
            best = {}
            for _ in range(a.rounds):
                for name, ks in variants.items():
                    kernel = ks[split]
                    fwd = time_ms(lambda: kernel(q, k, v, decay=lam), 10)
                    grad = time_ms(lambda: kernel.grad(q, k, v, g, decay=lam), 5)
                    old = best.get(name, (fwd, grad))
                    best[name] = (min(old[0], fwd), min(old[1], grad))
            (bf, bg), (tf, tg) = best["base"], best["this"]
            print(f"n={n} b={b} split={split}: forward {bf:.3f} -> {tf:.3f} ms "
                  f"({bf / tf:.3f}x), gradient {bg:.3f} -> {tg:.3f} ms ({bg / tg:.3f}x)",
                  flush=True)


if __name__ == "__main__":
    main()
