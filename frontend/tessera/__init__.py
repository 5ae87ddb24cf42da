"""Tessera: attention variants written as short specs, compiled through MLIR.

    import tessera
    spec = tessera.attention(causal=True, score_mod=lambda s, b, h, i, j: s - (i - j) / 8)
    kernel = tessera.compile(spec, head_dim=64)
    out = kernel(q, k, v)              # numpy / DLPack tensors [B, H, N, D]
    print(kernel.ir("tile"))           # the block program; also "attn", "llvm"
"""
from . import _native

_native.ensure(__path__)  # an installed wheel under another Python builds its layer here

from .api import compile
from .config import Config
from .errors import CompileError
from .kernel import Kernel
from .spec import AttentionSpec, attention
from .linear import LinearAttentionSpec, alibi_decay, linear_attention, linear_decode
from .program import (ProgramSpec, block_topk, compress, gate, gather_rows, lsh_sort, merge,
                      program, scatter_rows)
from .trace import (Buffer, SpecError, clamp, exp, exp2, floor, log, log2, maximum, minimum, sqrt,
                    tanh, where)
from . import reference

__all__ = [
    "AttentionSpec", "Buffer", "LinearAttentionSpec", "alibi_decay", "linear_attention",
    "linear_decode", "CompileError", "Config", "Kernel", "SpecError", "attention",
    "compile", "clamp", "exp", "exp2", "floor", "log", "log2", "maximum", "minimum", "reference",
    "sqrt", "tanh", "where",
    "ProgramSpec", "block_topk", "compress", "gate", "gather_rows", "lsh_sort", "merge",
    "program", "scatter_rows",
]

from .autotune import AutotuneResult, autotune  # noqa: E402
from .torch_ops import TorchKernel, torch_op  # noqa: E402  (imports torch on first use)

__all__ += ["AutotuneResult", "autotune", "TorchKernel", "torch_op"]
