"""Tuning the softmax backward apart from the forward (`tessera.autotune(..., backward=True)`).

The gradient kernels (Δ, dK / dV per key tile, dQ per query tile) have a config of their
own (`kernel.grad_config`, used by `kernel.grad` and by the torch op's backward): their
key tiles are product rows too, so both tile sizes must be multiples of 16 x num_warps on
the GPU, and the stages their shared memory allows differ from the forward's. This module
says what the backward's candidates are, how one is compiled (the gradient module) and how
it is timed (kernel.grad on fixed o, lse and grad_out); autotune.py runs the search and
keeps the winner in the tuning store under the gradient module's hash, a key of its own.
"""
from __future__ import annotations

import hashlib
from typing import Callable, List, Optional, Tuple

import numpy as np

from .config import Config
from .softmax_grad import GRAD_SHARED_BUDGET, grad_mlir, grad_shared_bytes
from .spec import AttentionSpec
from .trace import SpecError

# block_m: query tiles (the dQ grid's product rows, the dK / dV grid's walked tiles unless
# grad_query_tile says otherwise); block_n: key tiles (the dK / dV grid's product rows).
DEFAULT_GRAD_SPACE = {
    "cpu": {"block_m": [32, 64, 128], "block_n": [32, 64, 128]},
    # min_blocks: with 1 ptxas gets .minnctapersm 1 (sm_80's default; default_grad_config
    # says where each spills). grad_query_tile: the dK / dV grid's queries per tile ([key, query] tiles; on sm_80
    # 64 = 16 x num_warps takes the [query, key] route, queries as product rows).
    # grad_dq_atomic: dQ summed by the dK / dV grid with f32 atomics (5 products per pair
    # instead of 7; not bit-deterministic).
    "cuda": {"block_m": [64, 128], "block_n": [64, 128], "num_warps": [4, 8],
             "num_stages": [1, 2], "min_blocks": [0, 1], "grad_query_tile": [16, 32, 64],
             "grad_dq_atomic": [False, True]},
}


def check_backward_spec(spec) -> None:
    if not isinstance(spec, AttentionSpec):
        raise SpecError(f"backward=True tunes the softmax backward; {type(spec).__name__} "
                        f"has no gradient kernel to tune")


def grad_key_hash(spec: AttentionSpec, dims) -> str:
    """The backward's key in the tuning store: the gradient module's hash (never the
    forward's, so that each keeps its own entry)."""
    return hashlib.sha256(grad_mlir(spec, *dims).encode()).hexdigest()


def grad_module(spec: AttentionSpec, dtype: str, head_dim: int, value_dim: int) -> Tuple[str, str]:
    """(module, entry) of the gradient kernels, as kernel.grad compiles them."""
    return grad_mlir(spec, dtype, head_dim, value_dim), spec.name + "_grad"


def invalid_for_backward(config: Config, target: str, head_dim: int,
                         value_dim: int, chip: str = "sm_90a") -> Optional[str]:
    """Why `config` cannot serve the backward on `target` (None: it may; the compiler
    still decides). Checked before compiling, so the tuner spends no compile on these."""
    if target != "cuda":
        return None
    rows = 16 * config.num_warps
    if config.block_m % rows or config.block_n % rows:
        return (f"the backward's query and key tiles are both product rows: block_m and "
                f"block_n must be multiples of 16 x num_warps = {rows}, got "
                f"{config.block_m} x {config.block_n}")
    tile = config.grad_query_tile
    # A product extent (N of Sᵀ / dPᵀ, K of dV / dK) in [key, query] tiles; on sm_80 a
    # tile of 16 x num_warps or more takes [query, key] tiles: product rows.
    unit = rows if chip != "sm_90a" and tile >= rows else 16
    if tile and (tile % unit or tile > 256):
        return (f"grad_query_tile={tile}: the dK / dV grid's query tiles on {chip} take a "
                f"multiple of {unit} up to 256 (0: the compiler's rule)")
    need = grad_shared_bytes(config, head_dim, value_dim)
    if config.num_stages > 1 and need > GRAD_SHARED_BUDGET:
        return (f"num_stages={config.num_stages}: the gradient's tiles take about {need} bytes "
                f"of shared memory, past the {GRAD_SHARED_BUDGET} a block keeps for them; "
                f"use num_stages=1")
    return None


class BackwardRun:
    """One set of inputs for timing the backward: o and lse of a forward call, a fixed
    grad_out and the gradients' buffers; `runner(kernel)()` launches kernel.grad once."""

    def __init__(self, kernel, q, k, v, buffers, target: str) -> None:
        self.q, self.k, self.v, self.buffers = q, k, v, dict(buffers)
        self.o, self.lse = kernel(q, k, v, return_lse=True, **self.buffers)
        if target == "cpu":
            rng = np.random.default_rng(1)
            self.grad_out = rng.standard_normal(self.o.shape, dtype=np.float32)
            self.out = tuple(np.empty_like(x) for x in (q, k, v))
        else:
            import torch
            g = torch.Generator(device=q.device).manual_seed(1)
            self.grad_out = torch.randn(self.o.shape, device=q.device, dtype=q.dtype, generator=g)
            self.out = tuple(torch.empty_like(x) for x in (q, k, v))

    def runner(self, kernel) -> Callable[[], None]:
        def run() -> None:
            kernel.grad(self.q, self.k, self.v, self.o, self.lse, self.grad_out, out=self.out,
                        **self.buffers)
        return run

    def result(self) -> List:
        """dq, dk and dv of the last run, as one flat array (compared across candidates)."""
        if isinstance(self.q, np.ndarray):
            return np.concatenate([x.ravel() for x in self.out])
        import torch
        return torch.cat([x.reshape(-1) for x in self.out]).clone()

