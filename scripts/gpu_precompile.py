"""Fills a kernel cache with every GPU kernel the GPU tests and benchmarks use, on a
machine with the compiler, so that a GPU machine with only the runtime can run them.

    TESSERA_CACHE_DIR=.gpu-cache python3 scripts/gpu_precompile.py
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "frontend"), str(ROOT / "test/gpu"), str(ROOT / "bench")]

import autotune_gpu  # noqa: E402
import block_sparse_gpu  # noqa: E402
import cases  # noqa: E402
import hyper_gpu  # noqa: E402
import linear_gpu  # noqa: E402
import mask_mod_gpu  # noqa: E402
import nsa_gpu  # noqa: E402
import softmax_gpu  # noqa: E402
import tune_softmax  # noqa: E402

start = time.time()
n = sum(len(kernels()) for kernels in (
    cases.kernels, cases.linear_kernels, cases.linear_decode_kernels, cases.linear_grad_kernels,
    cases.linear_shaped_kernel,
    cases.block_sparse_kernels, cases.program_kernels,
    cases.hyper_kernels, cases.hyper_causal_kernels,
    softmax_gpu.kernels,
    tune_softmax.kernels, linear_gpu.kernels, autotune_gpu.kernels, block_sparse_gpu.kernels,
    mask_mod_gpu.kernels, nsa_gpu.kernels, hyper_gpu.kernels))
print(f"{n} GPU kernels compiled or found in the cache in {time.time() - start:.1f} s")
