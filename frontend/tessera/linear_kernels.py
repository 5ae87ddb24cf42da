"""Linear-attention kernels (linear.py has the specs): the CPU kernel, the GPU kernel
with its per-shape split, and autograd through the GPU gradient kernel."""
from __future__ import annotations

import functools

import numpy as np

from .checks import (as_array, check_cuda_tensor, check_decay, check_names, check_qkv_shapes,
                     check_qkv_tensors, check_strides, output_array, output_tensor,
                     torch_module)
from .core import IRStages, require_core
from .gpu import GpuKernel
from .launch import KernelImage
from .linear import LinearAttentionSpec, _grad_mlir, default_gpu_config, shape_split
from .trace import SpecError


class LinearKernel(IRStages):
    """A linear-attention spec compiled for the CPU; any B, H, N."""

    def __init__(self, spec: LinearAttentionSpec, dtype, head_dim, value_dim, config):
        self.spec, self.dtype, self.config = spec, dtype, config
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._impl = require_core().CpuKernel(self.module, spec.name, **config.as_kwargs())

    def grad(self, q, k, v, grad_out, **inputs):
        """(dq, dk, dv) of the spec's output for the upstream gradient `grad_out`; dk and
        dv sum over the query heads of each GQA group."""
        if self.spec.decode:
            raise SpecError("a decode step has no gradient kernel; differentiate the prefill")
        if getattr(self, "_grad", None) is None:
            module = _grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim)
            self._grad = require_core().CpuKernel(module, self.spec.name + "_grad", **self.config.as_kwargs())
        q, k, v, g = (as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (grad_out, "grad_out")))
        self._check(q, k, v)
        if g.shape != q.shape[:3] + (self.value_dim,) or g.dtype != np.float32:
            raise ValueError(f"grad_out must be float32 of shape {q.shape[:3] + (self.value_dim,)}, got {g.dtype} {g.shape}")
        extras = self._extras(q, inputs)
        dq, dk, dv = np.empty_like(q), np.empty(k.shape, np.float32), np.empty(v.shape, np.float32)
        self._grad.run([q, k, v, g, *extras, dq, dk, dv])
        return dq, dk, dv

    def __call__(self, q, k, v, *, out=None, state_out=None, **inputs):
        q, k, v = (as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
        self._check(q, k, v)
        extras = self._extras(q, inputs)
        B, H, N, D = q.shape
        out = output_array(out, (B, H, N, self.value_dim), q.dtype, "out")
        state_out = output_array(state_out, (B, H, D, self.value_dim), np.dtype(np.float32), "state_out")
        self._impl.run([q, k, v, *extras, out, state_out])
        return out, state_out

    def _check(self, q, k, v):
        for a, n in ((q, "q"), (k, "k"), (v, "v")):
            if a.ndim != 4:
                raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got shape {a.shape}")
            if a.dtype != np.float32:
                raise TypeError(f"{n} has dtype {a.dtype}; this kernel takes float32")
            check_strides(a, n)
        check_qkv_shapes(q.shape, k.shape, v.shape, self.head_dim, self.value_dim,
                         same_length=True)
        if self.spec.decode and q.shape[2] != 1:
            raise ValueError(f"a decode step takes one token, got {q.shape[2]}")

    def _extras(self, q, inputs):
        """The call-time inputs (state, decay, initial_state), checked, in kernel order."""
        B, H, _, D = q.shape
        check_names("inputs", self.spec.extra_inputs, inputs)
        shapes = {"state": (B, H, D, self.value_dim), "initial_state": (B, H, D, self.value_dim),
                  "decay": (H,)}
        extras = []
        for name in self.spec.extra_inputs:
            a = as_array(inputs[name], name)
            if a.shape != shapes[name] or a.dtype != np.float32:
                raise ValueError(f"{name} must be float32 of shape {shapes[name]}, got {a.dtype} {a.shape}")
            if name == "decay" and not np.all((a > 0) & (a <= 1)):
                raise ValueError("decay values must lie in (0, 1]")
            check_strides(a, name)
            extras.append(a)
        return extras


class LinearGpuKernel:
    """A linear-attention spec compiled to PTX: bf16/f16 q, k, v, f32 state; any B, H, N.
    With `config.split` = s, each (head, batch) runs as s programs: pieces of the value
    columns (16 x num_warps each where they divide, else 16 or more), times chunks of the
    sequence, for more parallelism when batch x heads is small. Compiled without a config
    (`config=None`), a causal prefill picks s per call from B·H and N (`shape_split`),
    compiling each s on first use (the on-disk cache keeps them)."""

    def __init__(self, spec: LinearAttentionSpec, dtype, head_dim, value_dim, config, chip):
        self.split_follows_shape = config is None and spec.causal and not spec.decode
        config = config or default_gpu_config(value_dim, spec.decode, head_dim=head_dim)
        self._compiled = GpuKernel(spec, dtype, head_dim, value_dim, config, chip)
        self.spec, self.dtype, self.config, self.chip = spec, dtype, config, chip
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module, self.ptx = self._compiled.module, self._compiled.ptx
        self._image = self._compiled._image
        self._by_split = {config.split: self}

    def split_for(self, batch_heads: int, seq_len: int, device=None) -> int:
        """The split that runs B·H = `batch_heads` sequences of `seq_len` tokens: the
        config's where one was given, else `shape_split`'s for this device."""
        if not self.split_follows_shape:
            return self.config.split
        return shape_split(self.config.split, batch_heads, seq_len, _sm_count(device))

    def for_shape(self, batch_heads: int, seq_len: int, device=None) -> "LinearGpuKernel":
        """The kernel that runs B·H = `batch_heads` sequences of `seq_len` tokens: this one
        where its config was given, else the one compiled for `split_for`'s split."""
        split = self.split_for(batch_heads, seq_len, device)
        if split not in self._by_split:
            config = default_gpu_config(self.value_dim, split=split, head_dim=self.head_dim)
            self._by_split[split] = LinearGpuKernel(self.spec, self.dtype, self.head_dim,
                                                    self.value_dim, config, self.chip)
        return self._by_split[split]

    def __call__(self, q, k, v, *, out=None, state_out=None, **inputs):
        """(o, final state). When q, k or v require gradients (and torch records them),
        o is differentiable through the gradient kernel; the final state is not."""
        torch = torch_module()
        if (torch.is_grad_enabled()
                and any(getattr(t, "requires_grad", False) for t in (q, k, v))
                and not self.spec.decode):
            if out is not None or state_out is not None:
                raise ValueError("out= / state_out= are not taken where q, k or v require "
                                 "gradients")
            return _linear_function().apply(self._shaped(q), inputs, q, k, v)
        return self._shaped(q)._forward(q, k, v, out, state_out, inputs)

    def grad(self, q, k, v, grad_out, **inputs):
        """(dq, dk, dv) of o for the upstream gradient `grad_out` (q's dtype, o's shape),
        from the gradient kernel (compiled on first use)."""
        if self.spec.decode:
            raise SpecError("a decode step has no gradient kernel; differentiate the prefill")
        extras = self._checked(q, k, v, inputs)
        B, H, N, _ = q.shape
        check_cuda_tensor(grad_out, "grad_out", q.dtype, q.device)
        if tuple(grad_out.shape) != (B, H, N, self.value_dim):
            raise ValueError(f"grad_out must have shape {(B, H, N, self.value_dim)}, got "
                             f"{tuple(grad_out.shape)}")
        dq, dk, dv = (x.new_empty(x.shape) for x in (q, k, v))
        self._shaped(q).grad_image().launch([q, k, v, grad_out, *extras, dq, dk, dv])
        return dq, dk, dv

    def _shaped(self, q):
        """for_shape for q's [B, H, N, D] (checked later, by the kernel that runs)."""
        if not self.split_follows_shape or len(getattr(q, "shape", ())) != 4:
            return self
        B, H, N, _ = q.shape
        return self.for_shape(B * H, N, q.device)

    def grad_image(self):
        """The gradient kernel's image, compiled (or found in the cache) on first use."""
        if getattr(self, "_grad", None) is None:
            module = _grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim)
            self._grad = KernelImage(module, self.spec.name + "_grad", self.config, self.chip)
        return self._grad

    def _forward(self, q, k, v, out, state_out, inputs):
        torch = torch_module()
        extras = self._checked(q, k, v, inputs)
        B, H, N, D = q.shape
        out = output_tensor(out, (B, H, N, self.value_dim), q.dtype, q.device, "out")
        state_out = output_tensor(state_out, (B, H, D, self.value_dim), torch.float32,
                                   q.device, "state_out")
        self._image.launch([q, k, v, *extras, out, state_out])
        return out, state_out

    def _checked(self, q, k, v, inputs):
        """The call-time inputs (decay, initial_state, state) in kernel order, checked
        with q, k, v."""
        torch = torch_module()
        check_qkv_tensors(q, k, v, self.dtype)
        check_qkv_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), self.head_dim,
                         self.value_dim, same_length=True)
        check_names("inputs", self.spec.extra_inputs, inputs)
        B, H, N, D = q.shape
        if self.spec.decode and N != 1:
            raise ValueError(f"a decode step takes one token, got {N}")
        shapes = {"initial_state": (B, H, D, self.value_dim), "state": (B, H, D, self.value_dim),
                  "decay": (H,)}
        extras = []
        for name in self.spec.extra_inputs:
            a = inputs[name]
            check_cuda_tensor(a, name, torch.float32, q.device)
            if tuple(a.shape) != shapes[name]:
                raise ValueError(f"{name} must be float32 of shape {shapes[name]}, got {tuple(a.shape)}")
            if name == "decay":
                check_decay(a)
            extras.append(a)
        return extras


@functools.lru_cache(maxsize=None)
def _sm_count(device) -> int:
    """Streaming multiprocessors of a CUDA device (132, an H200's, where torch cannot say)."""
    try:
        return torch_module().cuda.get_device_properties(device).multi_processor_count
    except Exception:
        return 132


@functools.lru_cache(maxsize=None)
def _linear_function():
    """torch.autograd.Function for GPU linear attention, defined on first use (torch is
    imported lazily)."""
    torch = torch_module()

    class LinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, kernel, inputs, q, k, v):
            out, state = kernel._forward(q, k, v, None, None, inputs)
            ctx.kernel, ctx.inputs = kernel, inputs
            ctx.save_for_backward(q, k, v)
            ctx.mark_non_differentiable(state)
            return out, state

        @staticmethod
        def backward(ctx, grad_out, _grad_state):
            q, k, v = ctx.saved_tensors
            dq, dk, dv = ctx.kernel.grad(q, k, v, grad_out.to(q.dtype).contiguous(),
                                         **ctx.inputs)
            return None, None, dq, dk, dv

    return LinearFunction
