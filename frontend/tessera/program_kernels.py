"""Program kernels (program.py has the specs): a program compiled for the CPU, or for the
GPU with its intermediates in workspaces."""
from __future__ import annotations

import numpy as np

from .checks import (TORCH_DTYPES, as_array, check_cuda_tensor, check_strides, output_array,
                     torch_module)
from .config import Config
from .core import IRStages, require_core
from .launch import KernelImage
from .program import _ELEMENT, ProgramSpec, _check_inputs, _check_tables, _given, dim_value
from .trace import SpecError


_NUMPY = {"float32": np.dtype(np.float32), "int32": np.dtype(np.int32)}


class ProgramKernel(IRStages):
    """A program compiled for the CPU: inputs in declared order, outputs allocated."""

    def __init__(self, spec: ProgramSpec, dtype: str, head_dim: int, value_dim: int,
                 config: Config) -> None:
        self.spec, self.dtype, self.config = spec, dtype, config
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module, self._outputs = spec.trace(dtype, head_dim, value_dim)
        self._impl = require_core().CpuKernel(self.module, spec.name, **config.as_kwargs())

    def _dtype(self, kind: str) -> np.dtype:
        return _NUMPY[self.dtype if kind == _ELEMENT else kind]

    def __call__(self, *args, **kwargs):
        given = _given(self.spec, args, kwargs)
        arrays = [as_array(x, d.name) for d, x in zip(self.spec.inputs, given)]
        env = _check_inputs(self.spec.inputs, arrays, lambda a: a.dtype,
                            lambda d: self._dtype(d.kind), self.head_dim, self.value_dim)
        for d, a in zip(self.spec.inputs, arrays):
            check_strides(a, d.name)
        _check_tables(self.spec, env, {d.name: a.shape for d, a in zip(self.spec.inputs, arrays)})
        outs = [output_array(None, tuple(dim_value(x, env) for x in o.dims), self._dtype(o.kind),
                        "output") for o in self._outputs]
        self._impl.run(arrays + outs)
        return outs[0] if len(outs) == 1 else tuple(outs)


class ProgramGpuKernel(IRStages):
    """A program compiled for the GPU: torch CUDA inputs in declared order, outputs
    allocated, intermediates in workspaces the runtime allocates per call. Every op of the
    program must have a GPU lowering; the compiler names the first that has none."""

    def __init__(self, spec: ProgramSpec, dtype: str, head_dim: int, value_dim: int,
                 config: Config, chip: str) -> None:
        if dtype not in TORCH_DTYPES:
            raise SpecError(f"GPU programs take bfloat16 or float16, got {dtype!r}")
        self.spec, self.dtype, self.config = spec, dtype, config
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module, self._outputs = spec.trace(dtype, head_dim, value_dim)
        self._image = KernelImage(self.module, spec.name, config, chip)
        self.chip, self.ptx = chip, self._image.ptx

    def _dtype(self, kind: str):
        return getattr(torch_module(), TORCH_DTYPES[self.dtype] if kind == _ELEMENT else kind)

    def __call__(self, *args, **kwargs):
        tensors, outs = self._arguments(args, kwargs)
        self._image.launch(tensors + outs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def profile(self, *args, repeat: int = 3, **kwargs):
        """Times each launch of the program on these inputs: a list of (kernel, grid,
        milliseconds), the best of `repeat` runs each."""
        tensors, outs = self._arguments(args, kwargs)
        return self._image.profile(tensors + outs, repeat)

    def _arguments(self, args, kwargs):
        """The checked inputs in declared order and freshly allocated outputs."""
        torch = torch_module()
        tensors = _given(self.spec, args, kwargs)
        device = getattr(tensors[0], "device", None)
        for d, t in zip(self.spec.inputs, tensors):
            if d.kind == _ELEMENT:  # product operands: 16-byte rows
                check_cuda_tensor(t, d.name, self._dtype(d.kind), device)
            elif (not isinstance(t, torch.Tensor) or not t.is_cuda or t.device != device
                  or t.stride(-1) != 1):
                raise TypeError(f"input {d.name!r} must be a {d.kind} tensor on {device}, "
                                f"contiguous in its last dimension")
        env = _check_inputs(self.spec.inputs, tensors, lambda t: t.dtype,
                            lambda d: self._dtype(d.kind), self.head_dim, self.value_dim)
        _check_tables(self.spec, env, {d.name: tuple(t.shape) for d, t in zip(self.spec.inputs, tensors)})
        outs = [torch.empty(tuple(dim_value(x, env) for x in o.dims), dtype=self._dtype(o.kind),
                            device=device) for o in self._outputs]
        return tensors, outs
