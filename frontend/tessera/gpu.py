"""GPU kernels: PTX from the compiler (or the on-disk cache), launched by the runtime.

The compiler (MLIR) may be absent: on a machine with only the runtime, kernels come from
the cache, keyed by (spec IR, tuning config, architecture, compiler version), that a
machine with the compiler filled (scripts/gpu_precompile.py).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

from . import _runtime
from .errors import CompileError
from .trace import SpecError



def _compiler_fingerprint() -> str:
    """Part of every cache key: kernels from another compiler are never reused. From a
    source checkout (the developer flow, and the GPU machine that gets a copy of the tree)
    it hashes the compiler's sources, so both machines agree without MLIR on the second."""
    import hashlib
    root = Path(__file__).resolve().parents[2]
    folders = [root / d for d in ("dialect", "passes", "codegen", "compiler")]
    if not all(f.is_dir() for f in folders):
        return "tessera-0.1.0"
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".cpp", ".h", ".td", ".txt"):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return "tessera-0.1.0+" + h.hexdigest()[:16]


COMPILER_VERSION = _compiler_fingerprint()
_TORCH_DTYPES = {"bfloat16": "bfloat16", "float16": "float16"}


def cache_dir() -> str:
    return os.environ.get("TESSERA_CACHE_DIR") or _runtime.cache_default_dir()


def _tuning_text(config) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(config.as_kwargs().items()))


def load_image(module: str, entry: str, config, chip: str):
    """(launches, ptx bytes) for `entry` of `module`, compiling on a cache miss."""
    key = _runtime.cache_key(module, _tuning_text(config), chip, COMPILER_VERSION)
    directory = cache_dir()
    blob = _runtime.cache_get(directory, key)
    if blob is None:
        try:
            from . import _core
        except ImportError as e:
            raise CompileError(
                f"kernel {entry!r} for {chip} is not in the cache ({directory}) and this "
                f"machine has no Tessera compiler; compile it where MLIR is installed "
                f"(scripts/gpu_precompile.py) and copy the cache") from e
        ptx, launches = _core.compile_gpu(module, entry, chip, **config.as_kwargs())
        blob = launches.encode() + b"\n" + ptx
        _runtime.cache_put(directory, key, blob)
    header, ptx = blob.split(b"\n", 1)
    return json.loads(header), ptx


def _check_gpu_layout(t, name: str) -> None:
    """Kernels read rows with 16-byte vector loads: the last dimension must be contiguous
    and every row must start 16-byte aligned."""
    if any(s < 0 for s in t.stride()):
        raise ValueError(f"{name} has negative strides")
    if t.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension (stride 1), got "
                         f"strides {tuple(t.stride())}; pass {name}.contiguous()")
    item = t.element_size()
    if t.data_ptr() % 16 or any((s * item) % 16 for s in t.stride()[:-1]):
        raise ValueError(f"{name} rows must start at 16-byte boundaries (data pointer and "
                         f"strides multiples of 16 bytes); pass {name}.contiguous()")


class GpuKernel:
    """A spec compiled to PTX for one element type, head dims and config; any B, H, N."""

    def __init__(self, spec, dtype: str, head_dim: int, value_dim: int, config,
                 chip: str = "sm_90a") -> None:
        if dtype not in _TORCH_DTYPES:
            raise SpecError(f"GPU kernels take bfloat16 or float16, got {dtype!r}")
        self.spec, self.dtype, self.config, self.chip = spec, dtype, config, chip
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self.launches, self.ptx = load_image(self.module, spec.name, config, chip)
        self._loaded = {}

    def _kernels(self, device_index: int):
        if device_index not in self._loaded:
            module = _runtime.Module(self.ptx, device_index)
            self._loaded[device_index] = (module, [module.kernel(l["kernel"]) for l in self.launches])
        return self._loaded[device_index][1]

    def __call__(self, q, k, v, *, return_lse: bool = False, out=None, lse_out=None,
                 **buffers):
        import torch
        want = getattr(torch, _TORCH_DTYPES[self.dtype])
        for t, n in ((q, "q"), (k, "k"), (v, "v")):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{n} must be a torch tensor on a CUDA device, got {type(t).__name__}")
            if not t.is_cuda:
                raise ValueError(f"{n} is on {t.device}; this kernel runs on the GPU")
            if t.device != q.device:
                raise ValueError(f"{n} is on {t.device} but q is on {q.device}")
            if t.dtype != want:
                raise TypeError(f"{n} has dtype {t.dtype}; this kernel takes {want}")
            if t.dim() != 4:
                raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got {tuple(t.shape)}")
            _check_gpu_layout(t, n)
        from .kernel import check_names, check_qkv_shapes
        B, H, Nq, _ = q.shape
        check_qkv_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), self.head_dim,
                         self.value_dim)
        check_names("buffers", self.spec.buffers, buffers)
        tables = []
        for name in self.spec.buffers:
            t = buffers[name]
            if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.dtype != torch.int32 or t.device != q.device:
                raise TypeError(f"buffer {name!r} must be a 1-D int32 tensor on {q.device}")
            tables.append(t)
        if out is None:
            out = torch.empty((B, H, Nq, self.value_dim), dtype=want, device=q.device)
        elif tuple(out.shape) != (B, H, Nq, self.value_dim) or out.dtype != want or out.device != q.device:
            raise ValueError(f"out must be {want} of shape {(B, H, Nq, self.value_dim)} on {q.device}")
        if lse_out is None:
            lse_out = torch.empty((B, H, Nq), dtype=torch.float32, device=q.device)
        elif tuple(lse_out.shape) != (B, H, Nq) or lse_out.dtype != torch.float32 or lse_out.device != q.device:
            raise ValueError(f"lse_out must be float32 of shape {(B, H, Nq)} on {q.device}")

        for t, n in ((out, "out"), (lse_out, "lse_out"), *zip(tables, self.spec.buffers)):
            if t.stride(-1) != 1:
                raise ValueError(f"{n} must be contiguous in its last dimension")
        args = [q, k, v, *tables, out, lse_out]
        params = []
        for t in args:
            p = t.data_ptr()
            params += [p, p, 0, *t.shape, *t.stride()]
        stream = torch.cuda.current_stream(q.device).cuda_stream
        for launch, kernel in zip(self.launches, self._kernels(q.device.index or 0)):
            grid = [d if a < 0 else math.ceil(args[a].shape[d] / div) for a, d, div in launch["grid"]]
            if min(grid) == 0:
                continue
            kernel.launch(grid, (launch["block"], 1, 1), launch.get("smem", 0), stream, params)
        return (out, lse_out) if return_lse else out
