"""The CPU softmax kernel: a spec compiled through MLIR's execution engine, called on host
arrays; its IR at each stage; its backward (softmax_grad.py)."""
from __future__ import annotations

import numpy as np

from .checks import (as_array, check_block_lists, check_names, check_qkv_shapes,
                     check_strides, output_array)
from .config import Config
from .core import IRStages, require_core
from .errors import CompileError  # noqa: F401  (tessera.kernel.CompileError, as before)
from .softmax_grad import kernel_grad
from .spec import AttentionSpec
from .table_bounds import check_table_extents
from .torch_ops import differentiable_call, wants_torch_grad

_DTYPES = {np.dtype(np.float32): "float32"}


class Kernel(IRStages):
    """A spec compiled for one element type and head dims; any B, H, N."""

    def __init__(self, spec: AttentionSpec, dtype: str, head_dim: int, value_dim: int,
                 config: Config, target: str) -> None:
        self.spec, self.dtype, self.config, self.target = spec, dtype, config, target
        self.head_dim, self.value_dim = head_dim, value_dim
        self.grad_config = None  # the backward's Config; None: the forward's
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._impl = require_core().CpuKernel(self.module, spec.name, **config.as_kwargs())

    def _block_indices(self, given, B, H, Nq):
        """The caller's per-query-block key-block lists, checked."""
        a = as_array(given, "block_indices")
        check_block_lists(tuple(a.shape), str(a.dtype), self.spec.block_sparse[0], B, H, Nq)
        check_strides(a, "block_indices")
        return a

    def call_arguments(self, q, k, v, buffers):
        """q, k, v, the block lists and tables in `buffers`, checked, in the kernel's
        argument order (the forward's and the gradient's)."""
        q, k, v = (as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
        for a, n in ((q, "q"), (k, "k"), (v, "v")):
            if a.ndim != 4:
                raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got shape {a.shape}")
            if a.dtype not in _DTYPES or _DTYPES[a.dtype] != self.dtype:
                raise TypeError(f"{n} has dtype {a.dtype}; this kernel takes {self.dtype}")
            check_strides(a, n)
        B, H, Nq, _ = q.shape
        check_qkv_shapes(q.shape, k.shape, v.shape, self.head_dim, self.value_dim)
        blocks = []
        if self.spec.block_sparse is not None:
            if "block_indices" not in buffers:
                raise TypeError("this spec is block-sparse: pass block_indices=")
            blocks.append(self._block_indices(buffers.pop("block_indices"), B, H, Nq))
        check_names("buffers", self.spec.buffers, buffers)
        tables = []
        for table in self.spec.tables:
            name = table.name
            t = as_array(buffers[name], name)
            if t.ndim != table.rank or t.dtype != np.dtype(table.dtype):
                raise TypeError(f"buffer {name!r} must be {table.describe()} array, got "
                                f"{t.dtype} of shape {t.shape}")
            check_strides(t, name)
            tables.append(t)
        check_table_extents(self.spec, B, H, Nq, k.shape[2],
                            {t.name: a.shape for t, a in zip(self.spec.tables, tables)})
        return [q, k, v, *blocks, *tables]

    def __call__(self, q, k, v, *, return_lse: bool = False, out=None, lse_out=None,
                 **buffers):
        if wants_torch_grad(q, k, v, *buffers.values()):
            return differentiable_call(self, q, k, v, return_lse, out, lse_out, None, buffers)
        args = self.call_arguments(q, k, v, dict(buffers))
        q = args[0]
        B, H, Nq, _ = q.shape
        out = output_array(out, (B, H, Nq, self.value_dim), q.dtype, "out")
        lse_out = output_array(lse_out, (B, H, Nq), np.dtype(np.float32), "lse_out")
        self._impl.run([*args, out, lse_out])
        return (out, lse_out) if return_lse else out

    def grad(self, q, k, v, o, lse, grad_out, *, out=None, grad_tables=(), **buffers):
        """(dq, dk, dv) of o = self(q, k, v, **buffers) for the upstream gradient
        `grad_out` (o's shape and dtype), given o and lse of that call; dk and dv sum over
        each group's query heads; written into `out` = (dq, dk, dv) when given. Then the
        gradient of each float32 table named in `grad_tables` (read by the score_mod).
        The gradient kernel is compiled on first use."""
        return kernel_grad(self, q, k, v, o, lse, grad_out, out=out, grad_tables=grad_tables,
                           **buffers)
