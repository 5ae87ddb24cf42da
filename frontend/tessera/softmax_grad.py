"""The softmax-attention backward on the CPU target: `Kernel.grad` and the torch hook.

The gradient kernel is compiled from the same spec as the forward (one attn.attention_grad
op with the forward's attributes and modifier regions; the compiler differentiates the
score_mod), on first use.
"""
from __future__ import annotations

import re
from typing import Tuple

import numpy as np

from .trace import SpecError


def grad_mlir(spec, dtype: str, head_dim: int, value_dim: int) -> str:
    """The gradient module of a softmax spec: the forward's arguments with o, lse and
    grad_out after v, returning (dq, dk, dv)."""
    forward = spec.to_mlir(dtype, head_dim, value_dim)
    header = re.match(r"func\.func @\w+\((.*)\) -> \(", forward)
    args = header.group(1).split(", %")
    args = [a if a.startswith("%") else "%" + a for a in args]
    qt, vt = args[0].split(": ")[1], args[2].split(": ")[1]
    lt = "tensor<?x?x?xf32>"
    args[3:3] = [f"%o: {vt}", f"%lse: {lt}", f"%grad_out: {vt}"]
    blocks = None
    if spec.block_sparse is not None:
        blocks = ("%block_indices", "tensor<?x?x?x?xi32>")
    op = spec.op_text(("%dq", "%dk", "%dv"), ("%q", "%k", "%v", "%o", "%lse", "%grad_out"),
                      (qt, qt, vt, vt, lt), (), blocks, op="attn.attention_grad")
    return (f"func.func @{spec.name}_grad({', '.join(args)}) -> ({qt}, {qt}, {vt}) {{\n"
            f"{op}"
            f"  return %dq, %dk, %dv : {qt}, {qt}, {vt}\n"
            f"}}\n")


def _checked(x, name: str, shape, dtype) -> np.ndarray:
    from .kernel import _as_array, _check_strides
    a = _as_array(x, name)
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise ValueError(f"{name} must be {dtype} of shape {tuple(shape)}, got "
                         f"{a.dtype} {a.shape}")
    _check_strides(a, name)
    return a


def kernel_grad(kernel, q, k, v, o, lse, grad_out, out=None,
                **buffers) -> Tuple[np.ndarray, ...]:
    """(dq, dk, dv) of `kernel`'s output o = attention(q, k, v) for the upstream gradient
    `grad_out` (o's shape and dtype), from o and lse of the forward call; written into
    `out` = (dq, dk, dv) when given."""
    from .kernel import _as_array, _output, require_core
    dt = np.dtype(np.float32)
    q, k, v = (_as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
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
    if getattr(kernel, "_grad_impl", None) is None:
        module = grad_mlir(kernel.spec, kernel.dtype, kernel.head_dim, kernel.value_dim)
        kernel._grad_impl = require_core().CpuKernel(module, kernel.spec.name + "_grad",
                                                     **kernel.config.as_kwargs())
    if kernel.spec.window is not None and not kernel.spec.causal:
        raise SpecError("the softmax backward supports windows with causal=True only")
    if out is not None and (not isinstance(out, (tuple, list)) or len(out) != 3):
        raise TypeError("out must be a tuple (dq, dk, dv)")
    dq, dk, dv = (_output(out[i] if out is not None else None, x.shape, x.dtype, n)
                  for i, (x, n) in enumerate(((q, "dq"), (k, "dk"), (v, "dv"))))
    kernel._grad_impl.run([*inputs[:3], o, lse, grad_out, *inputs[3:], dq, dk, dv])
    return dq, dk, dv


def wants_torch_grad(*tensors) -> bool:
    """Whether a call on these (torch) tensors must record a backward."""
    import sys
    torch = sys.modules.get("torch")
    return (torch is not None and torch.is_grad_enabled()
            and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors))


def torch_attention(kernel, q, k, v, buffers):
    """o = kernel(q, k, v) for CPU torch tensors, differentiable in q, k and v through
    the generated backward (tables and block lists get no gradient)."""
    import torch

    class _Attention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            o, lse = kernel(q.detach(), k.detach(), v.detach(), return_lse=True, **buffers)
            o, lse = torch.from_numpy(o), torch.from_numpy(lse)
            ctx.save_for_backward(q, k, v, o, lse)
            return o

        @staticmethod
        def backward(ctx, grad_out):
            q, k, v, o, lse = (t.detach() for t in ctx.saved_tensors)
            g = grad_out.detach().contiguous()
            dq, dk, dv = kernel.grad(q, k, v, o, lse, g, **buffers)
            return torch.from_numpy(dq), torch.from_numpy(dk), torch.from_numpy(dv)

    if q.device.type != "cpu":
        raise ValueError(f"q is on {q.device}; this kernel was compiled for the CPU")
    return _Attention.apply(q, k, v)
