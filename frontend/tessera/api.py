"""tessera.compile: a spec (softmax, linear or program) to the kernel for its target."""
from __future__ import annotations

from typing import Optional, Union

from .config import Config
from .gpu import GpuKernel
from .kernel import Kernel
from .linear import LinearAttentionSpec
from .linear_kernels import LinearGpuKernel, LinearKernel
from .program import ProgramSpec
from .program_kernels import ProgramGpuKernel, ProgramKernel
from .spec import AttentionSpec
from .trace import SpecError


Spec = Union[AttentionSpec, LinearAttentionSpec, ProgramSpec]


def compile(spec: Spec, *, head_dim: int, value_dim: Optional[int] = None,
            dtype: str = "float32", config: Optional[Config] = None,
            target: str = "cpu", chip: str = "sm_90a"):
    """Compiles `spec` once for `dtype` and head dims; batch, heads and lengths are
    run-time values."""
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
    if (target == "cuda" and config is not None and config.persistent
            and not isinstance(spec, AttentionSpec)):
        # tessera-persistent-grid would rewrite their grids too: untested there.
        raise SpecError(f"Config.persistent applies to softmax attention forwards; "
                        f"{type(spec).__name__} kernels launch one program per tile")
    if isinstance(spec, ProgramSpec):
        if target == "cuda":
            return ProgramGpuKernel(spec, dtype, head_dim, value_dim, config or Config(), chip)
        return ProgramKernel(spec, dtype, head_dim, value_dim, config or Config())
    if isinstance(spec, LinearAttentionSpec):
        if target == "cuda":
            return LinearGpuKernel(spec, dtype, head_dim, value_dim, config, chip)
        return LinearKernel(spec, dtype, head_dim, value_dim, config or Config())
    if target == "cuda":
        # Past D = 128, 32-key tiles leave O's accumulator its registers (no spills).
        default = Config(block_n=64 if max(head_dim, value_dim) <= 128 else 32)
        return GpuKernel(spec, dtype, head_dim, value_dim, config or default, chip)
    return Kernel(spec, dtype, head_dim, value_dim, config or Config(), target)
