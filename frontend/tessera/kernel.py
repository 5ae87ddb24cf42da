"""Compiled kernels: argument checking, calling into the compiler core, IR inspection."""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

try:
    from . import _core
except ImportError as e:  # a GPU machine with only the runtime: kernels come from the cache
    _core = None
    _CORE_IMPORT_ERROR = e
from .spec import AttentionSpec
from .table_bounds import check_table_extents
from .trace import SpecError

from .errors import CompileError  # noqa: E402

_DTYPES = {np.dtype(np.float32): "float32"}
_DLPACK_CPU = 1


@dataclasses.dataclass(frozen=True)
class Config:
    """Tuning knobs; they become the kernel's #tile.config attribute (min_blocks, a
    register hint, goes to the GPU code generator only)."""

    block_m: int = 64
    block_n: int = 64
    num_warps: int = 4
    num_stages: int = 2
    # Pieces a program's work is split into, for more programs (linear attention: the
    # value columns; 1 = none).
    split: int = 1
    # GPU: blocks per SM the register allocation must leave room for (ptxas
    # .minnctapersm; 0 = the compiler's own choice). One-warpgroup D = 128 kernels take
    # 168 registers (3 blocks); 4 caps them at 128, spilling a little.
    min_blocks: int = 0

    def as_kwargs(self) -> Dict[str, int]:
        return dataclasses.asdict(self)


def _as_array(x, what: str) -> np.ndarray:
    """A zero-copy numpy view of a host tensor (numpy, or anything with DLPack)."""
    if isinstance(x, np.ndarray):
        return x
    device = getattr(x, "__dlpack_device__", None)
    if device is not None:
        kind, index = device()
        if int(kind) != _DLPACK_CPU:
            raise ValueError(f"{what} is on a device (DLPack device type {int(kind)}:{index}); "
                             f"this kernel was compiled for the CPU and needs host tensors")
        try:
            return np.from_dlpack(x)
        except (BufferError, RuntimeError) as e:  # torch: bfloat16, sparse, requires_grad
            raise TypeError(f"{what} cannot be read as a host array: {e}") from None
    raise TypeError(f"{what} must be a numpy array or a DLPack tensor, got {type(x).__name__}")


def _check_strides(a: np.ndarray, what: str) -> None:
    if any(s < 0 for s in a.strides):
        raise ValueError(f"{what} has negative strides {a.strides}; pass a copy")
    if any(s % a.itemsize for s in a.strides):
        raise ValueError(f"{what} has strides {a.strides} that are not whole elements")


def require_core():
    """The compiler module, or an error saying why it is missing."""
    if _core is None:
        raise CompileError(f"the Tessera compiler (tessera._core) is not available here: "
                           f"{_CORE_IMPORT_ERROR}")
    return _core


def check_qkv_shapes(q, k, v, head_dim: int, value_dim: int, same_length: bool = False):
    """Shape agreement of q [B, H, Nq, D], k [B, Hk, Nk, D], v [B, Hk, Nk, Dv], shared by
    every kernel (CPU and GPU)."""
    B, H, Nq, D = q
    Bk, Hk, Nk, Dk = k
    if D != head_dim or Dk != head_dim:
        raise ValueError(f"q and k head dims must be {head_dim}, got {D} and {Dk}")
    if tuple(v[:3]) != tuple(k[:3]) or v[3] != value_dim:
        raise ValueError(f"v must have shape [{Bk}, {Hk}, {Nk}, {value_dim}], got {tuple(v)}")
    if Bk != B:
        raise ValueError(f"q has batch {B} but k has batch {Bk}")
    if same_length and Nk != Nq:
        raise ValueError(f"q and k must have the same length, got {Nq} and {Nk}")
    if Hk == 0 or H % Hk:
        raise ValueError(f"query heads ({H}) must be a multiple of key/value heads ({Hk})")
    if Nk == 0 and Nq > 0:
        raise ValueError("k and v must hold at least one key")


def check_names(what: str, expected, given) -> None:
    """Keyword inputs a kernel takes by name: none missing, none unexpected."""
    missing = [n for n in expected if n not in given]
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise TypeError(f"{what}: missing {missing}, unexpected {extra}")


def _output(given, shape, dtype, what) -> np.ndarray:
    """A caller's output buffer (checked) or a new one."""
    if given is None:
        return np.empty(shape, dtype)
    a = _as_array(given, what)
    if a.shape != shape or a.dtype != dtype:
        raise ValueError(f"{what} must be {dtype} of shape {shape}, got {a.dtype} {a.shape}")
    if not a.flags.writeable:
        raise ValueError(f"{what} is read-only")
    _check_strides(a, what)
    return a


def check_block_lists(shape, dtype: str, block_q: int, B: int, H: int, Nq: int) -> None:
    """block_indices of a block-sparse spec: int32 [B, 1 or H, ceil(Nq / block_q), K]."""
    blocks_q = -(-Nq // block_q)
    if (len(shape) != 4 or dtype not in ("int32", "torch.int32") or shape[0] != B
            or shape[1] not in (1, H) or shape[2] != blocks_q or shape[3] < 1):
        raise ValueError(f"block_indices must be int32 of shape ({B}, 1 or {H}, {blocks_q}, K), "
                         f"got {dtype} {tuple(shape)}")


class Kernel:
    """A spec compiled for one element type and head dims; any B, H, N."""

    def __init__(self, spec: AttentionSpec, dtype: str, head_dim: int, value_dim: int,
                 config: Config, target: str) -> None:
        self.spec, self.dtype, self.config, self.target = spec, dtype, config, target
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._impl = require_core().CpuKernel(self.module, spec.name, **config.as_kwargs())

    def _block_indices(self, given, B, H, Nq):
        """The caller's per-query-block key-block lists, checked."""
        a = _as_array(given, "block_indices")
        check_block_lists(tuple(a.shape), str(a.dtype), self.spec.block_sparse[0], B, H, Nq)
        _check_strides(a, "block_indices")
        return a

    def ir(self, stage: str = "attn") -> str:
        """The IR at `stage` ("attn", "tile" or "llvm"), as `replay_command` prints it."""
        return _core.lower(self.module, stage, **self.config.as_kwargs())

    def pipeline(self, stage: str = "llvm") -> str:
        return _core.pipeline(stage, **self.config.as_kwargs())

    def replay_command(self, stage: str = "llvm", path: str = "spec.mlir") -> str:
        """The tessera-opt command that reproduces `ir(stage)` from the attn module."""
        return f"tessera-opt {path} --pass-pipeline='{self.pipeline(stage)}'"

    def call_arguments(self, q, k, v, buffers):
        """q, k, v, the block lists and tables in `buffers`, checked, in the kernel's
        argument order (the forward's and the gradient's)."""
        q, k, v = (_as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
        for a, n in ((q, "q"), (k, "k"), (v, "v")):
            if a.ndim != 4:
                raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got shape {a.shape}")
            if a.dtype not in _DTYPES or _DTYPES[a.dtype] != self.dtype:
                raise TypeError(f"{n} has dtype {a.dtype}; this kernel takes {self.dtype}")
            _check_strides(a, n)
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
            t = _as_array(buffers[name], name)
            if t.ndim != table.rank or t.dtype != np.dtype(table.dtype):
                raise TypeError(f"buffer {name!r} must be {table.describe()} array, got "
                                f"{t.dtype} of shape {t.shape}")
            _check_strides(t, name)
            tables.append(t)
        check_table_extents(self.spec, B, H, Nq, k.shape[2],
                            {t.name: a.shape for t, a in zip(self.spec.tables, tables)})
        return [q, k, v, *blocks, *tables]

    def __call__(self, q, k, v, *, return_lse: bool = False, out=None, lse_out=None,
                 **buffers):
        from .softmax_grad import differentiable_call, wants_torch_grad
        if wants_torch_grad(q, k, v, *buffers.values()):
            return differentiable_call(self, q, k, v, return_lse, out, lse_out, None, buffers)
        args = self.call_arguments(q, k, v, dict(buffers))
        q = args[0]
        B, H, Nq, _ = q.shape
        out = _output(out, (B, H, Nq, self.value_dim), q.dtype, "out")
        lse_out = _output(lse_out, (B, H, Nq), np.dtype(np.float32), "lse_out")
        self._impl.run([*args, out, lse_out])
        return (out, lse_out) if return_lse else out

    def grad(self, q, k, v, o, lse, grad_out, *, out=None, grad_tables=(), **buffers):
        """(dq, dk, dv) of o = self(q, k, v, **buffers) for the upstream gradient
        `grad_out` (o's shape and dtype), given o and lse of that call; dk and dv sum over
        each group's query heads; written into `out` = (dq, dk, dv) when given. Then the
        gradient of each float32 table named in `grad_tables` (read by the score_mod).
        The gradient kernel is compiled on first use."""
        from .softmax_grad import kernel_grad
        return kernel_grad(self, q, k, v, o, lse, grad_out, out=out, grad_tables=grad_tables,
                           **buffers)



def compile(spec: AttentionSpec, *, head_dim: int, value_dim: Optional[int] = None,
            dtype: str = "float32", config: Optional[Config] = None,
            target: str = "cpu", chip: str = "sm_90a"):
    """Compiles `spec` once for `dtype` and head dims; batch, heads and lengths are
    run-time values."""
    from .linear import LinearAttentionSpec, LinearKernel
    from .program import ProgramKernel, ProgramSpec
    if not isinstance(spec, (AttentionSpec, LinearAttentionSpec, ProgramSpec)):
        raise TypeError(f"spec must come from tessera.attention(...), "
                        f"tessera.linear_attention(...) or tessera.program(...), got "
                        f"{type(spec).__name__}")
    if target not in ("cpu", "cuda"):
        raise SpecError(f"target must be 'cpu' or 'cuda', got {target!r}")
    if target == "cpu" and dtype != "float32":
        raise SpecError(f"the CPU target computes in float32; dtype {dtype!r} is not supported")
    value_dim = head_dim if value_dim is None else value_dim
    for n, d in (("head_dim", head_dim), ("value_dim", value_dim)):
        if isinstance(d, bool) or not isinstance(d, int) or d < 1 or d > 512:
            raise SpecError(f"{n} must be an int in [1, 512], got {d!r}")
    if isinstance(spec, ProgramSpec):
        if target == "cuda":
            from .program import ProgramGpuKernel
            return ProgramGpuKernel(spec, dtype, head_dim, value_dim, config or Config(), chip)
        return ProgramKernel(spec, dtype, head_dim, value_dim, config or Config())
    if isinstance(spec, LinearAttentionSpec):
        if target == "cuda":
            from .linear import LinearGpuKernel
            return LinearGpuKernel(spec, dtype, head_dim, value_dim, config, chip)
        return LinearKernel(spec, dtype, head_dim, value_dim, config or Config())
    if target == "cuda":
        from .gpu import GpuKernel
        # Past D = 128, 32-key tiles leave O's accumulator its registers (no spills).
        default = Config(block_n=64 if max(head_dim, value_dim) <= 128 else 32)
        return GpuKernel(spec, dtype, head_dim, value_dim, config or default, chip)
    return Kernel(spec, dtype, head_dim, value_dim, config or Config(), target)
