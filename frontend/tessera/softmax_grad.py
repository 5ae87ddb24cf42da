"""The softmax-attention backward: the gradient module, which tables have a gradient, and
`Kernel.grad` (CPU target; GpuKernel.grad launches the GPU one; torch autograd reaches
both through the kernel's torch op, torch_ops.py).

The gradient kernel is compiled from the same spec as the forward (one attn.attention_grad
op with the forward's attributes and modifier regions; the compiler differentiates the
score_mod), on first use.
"""
from __future__ import annotations

import re
from typing import Tuple

import numpy as np

from .checks import as_array, check_strides, output_array
from .config import Config
from .core import require_core
from .trace import SpecError


# Shared memory the gradient's staged tiles may take on the GPU: three quarters of a block's
# 227 KiB, the rest for the code generator's own buffers (conversions, scratch).
GRAD_SHARED_BUDGET = 227 * 1024 * 3 // 4


def grad_shared_bytes(config: Config, head_dim: int, value_dim: int) -> int:
    """About the shared memory of the gradient's largest grid (16-bit tiles): the dK / dV
    grid keeps a key tile of K and V and stages query tiles of Q and dO num_stages deep;
    the dQ grid the other way round."""
    row = 2 * (head_dim + value_dim)
    bm, bn, stages = config.block_m, config.block_n, config.num_stages
    return row * max(bn + stages * bm, bm + stages * bn)


def grad_mlir(spec, dtype: str, head_dim: int, value_dim: int, grad_tables=()) -> str:
    """The gradient module of a softmax spec: the forward's arguments with o, lse and
    grad_out after v, returning (dq, dk, dv) and the gradients of `grad_tables`."""
    forward = spec.to_mlir(dtype, head_dim, value_dim)
    header = re.match(r"func\.func @\w+\((.*)\) -> \(", forward)
    args = ["%" + a.lstrip("%") for a in header.group(1).split(", %")]
    types = dict(a[1:].split(": ") for a in args)
    qt, vt, lt = types["q"], types["v"], "tensor<?x?x?xf32>"
    args[3:3] = [f"%o: {vt}", f"%lse: {lt}", f"%grad_out: {vt}"]
    blocks = None
    if spec.block_sparse is not None:
        blocks = ("%block_indices", "tensor<?x?x?x?xi32>")
    results = ["%dq", "%dk", "%dv"] + [f"%d_{n}" for n in grad_tables]
    result_types = [qt, qt, vt] + [types[n] for n in grad_tables]
    tables = ""
    if grad_tables:
        tt = ", ".join(types[n] for n in grad_tables)
        tables = f" table_grads({', '.join('%' + n for n in grad_tables)} : {tt} -> {tt})"
    op = spec.op_text(results, ("%q", "%k", "%v", "%o", "%lse", "%grad_out"),
                      (qt, qt, vt, vt, lt), (), blocks, op="attn.attention_grad",
                      after_blocks=tables)
    return (f"func.func @{spec.name}_grad({', '.join(args)}) -> ({', '.join(result_types)}) {{\n"
            f"{op}"
            f"  return {', '.join(results)} : {', '.join(result_types)}\n"
            f"}}\n")


def check_grad_tables(spec, grad_tables) -> tuple:
    """The names of the tables a gradient is asked for, checked: float32 tables the
    score_mod reads."""
    if isinstance(grad_tables, str):
        grad_tables = (grad_tables,)
    grad_tables = tuple(grad_tables)
    score_text = spec._regions[0] or ""
    by_name = {t.name: t for t in spec.tables}
    for name in grad_tables:
        if name not in by_name:
            raise SpecError(f"grad_tables: {name!r} is not a table of this spec "
                            f"(its tables: {sorted(by_name)})")
        if by_name[name].dtype != "float32":
            raise SpecError(f"grad_tables: table {name!r} is {by_name[name].dtype}; only float32 "
                            f"tables have a gradient")
        if f"%{name}[" not in score_text:
            raise SpecError(f"grad_tables: table {name!r} is not read by score_mod (only "
                            f"score_mod's tables have a gradient)")
    if len(set(grad_tables)) != len(grad_tables):
        raise SpecError(f"grad_tables names a table twice: {grad_tables}")
    return grad_tables


def _checked(x, name: str, shape, dtype) -> np.ndarray:
    a = as_array(x, name)
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise ValueError(f"{name} must be {dtype} of shape {tuple(shape)}, got "
                         f"{a.dtype} {a.shape}")
    check_strides(a, name)
    return a


def kernel_grad(kernel, q, k, v, o, lse, grad_out, out=None, grad_tables=(),
                **buffers) -> Tuple[np.ndarray, ...]:
    """(dq, dk, dv) of `kernel`'s output o = attention(q, k, v) for the upstream gradient
    `grad_out` (o's shape and dtype), from o and lse of the forward call; written into
    `out` = (dq, dk, dv) when given. Then the gradient of each table named in
    `grad_tables` (float32 tables the score_mod reads), in that order."""
    dt = np.dtype(np.float32)
    q, k, v = (as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must have rank 4, got shapes {q.shape}, {k.shape}, {v.shape}")
    B, H, Nq, _ = q.shape
    out_shape = (B, H, Nq, kernel.value_dim)
    o = _checked(o, "o", out_shape, dt)
    lse = _checked(lse, "lse", (B, H, Nq), dt)
    grad_out = _checked(grad_out, "grad_out", out_shape, dt)
    # q, k, v, block lists and tables are checked as the forward checks them; the
    # forward call below is never made (its outputs are throwaway views).
    inputs = kernel.call_arguments(q, k, v, buffers)
    grad_tables = check_grad_tables(kernel.spec, grad_tables)
    # The backward's own config (tuned by autotune(backward=True)), else the forward's.
    config = getattr(kernel, "grad_config", None) or kernel.config
    impls = kernel.__dict__.setdefault("_grad_impls", {})  # per table set and config
    if (grad_tables, config) not in impls:
        module = grad_mlir(kernel.spec, kernel.dtype, kernel.head_dim, kernel.value_dim,
                           grad_tables)
        impls[grad_tables, config] = require_core().CpuKernel(
            module, kernel.spec.name + "_grad", **config.as_kwargs())
    if out is not None and (not isinstance(out, (tuple, list)) or len(out) != 3):
        raise TypeError("out must be a tuple (dq, dk, dv)")
    dq, dk, dv = (output_array(out[i] if out is not None else None, x.shape, x.dtype, n)
                  for i, (x, n) in enumerate(((q, "dq"), (k, "dk"), (v, "dv"))))
    table_grads = [np.empty_like(as_array(buffers[n], n)) for n in grad_tables]
    impls[grad_tables, config].run([*inputs[:3], o, lse, grad_out, *inputs[3:], dq, dk, dv,
                            *table_grads])
    return (dq, dk, dv, *table_grads)
