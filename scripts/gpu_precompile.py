"""Fills a kernel cache with every GPU kernel the GPU tests and benchmarks use, on a
machine with the compiler, so that a GPU machine with only the runtime can run them.

    TESSERA_CACHE_DIR=.gpu-cache python3 scripts/gpu_precompile.py [--only linear_gpu]

--only keeps the kernel sets of the named modules (comma-separated). The cache records
the compiler's fingerprint in FINGERPRINT, so that a cache made before a compiler change
can be timed beside the changed one in one process (bench/ab_linear.py --base).
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "frontend"), str(ROOT / "test/gpu"), str(ROOT / "bench")]

import autotune_gpu  # noqa: E402
import block_sparse_gpu  # noqa: E402
import cases  # noqa: E402
import flex_cases  # noqa: E402
import grad_cases  # noqa: E402
import hyper_gpu  # noqa: E402
import linear_gpu  # noqa: E402
import mask_mod_gpu  # noqa: E402
import nsa_gpu  # noqa: E402
import softmax_bwd_gpu  # noqa: E402
import softmax_gpu  # noqa: E402
import tune_softmax  # noqa: E402

KERNEL_SETS = (
    cases.kernels, cases.linear_kernels, cases.linear_decode_kernels, cases.linear_grad_kernels,
    cases.linear_shaped_kernel,
    cases.block_sparse_kernels, cases.warp_specialized_kernels, cases.program_kernels,
    cases.hyper_kernels, cases.hyper_causal_kernels,
    softmax_gpu.kernels, softmax_bwd_gpu.kernels,
    tune_softmax.kernels, linear_gpu.kernels, autotune_gpu.kernels, block_sparse_gpu.kernels,
    mask_mod_gpu.kernels, nsa_gpu.kernels, hyper_gpu.kernels, flex_cases.kernels,
    grad_cases.kernels)


def kernel_sets(only=None):
    """The kernel-set functions, or those of the modules named in `only`."""
    return [k for k in KERNEL_SETS if not only or k.__module__ in only]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated modules whose kernel sets to compile")
    only = ap.parse_args().only
    sets = kernel_sets(only.split(",") if only else None)
    start = time.time()
    n = sum(len(kernels()) for kernels in sets)
    from tessera import gpu
    Path(gpu.cache_dir(), "FINGERPRINT").write_text(gpu.COMPILER_VERSION + "\n")
    print(f"{n} GPU kernels compiled or found in the cache in {time.time() - start:.1f} s "
          f"({gpu.cache_dir()}, {gpu.COMPILER_VERSION})")


if __name__ == "__main__":
    main()
