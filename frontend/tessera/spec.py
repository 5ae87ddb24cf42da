"""Attention specs: what the user asks for, turned into attn IR text."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, Optional, Tuple

from .trace import Buffer, SpecError, f32_literal, trace_region

_MLIR_TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
_SSA_NAMES = {"q", "k", "v", "o", "lse", "grad_out", "dq", "dk", "dv", "do", "block_indices",
              "score", "b", "h", "q_idx", "kv_idx"}


@dataclasses.dataclass(frozen=True)
class AttentionSpec:
    """Softmax attention (SEMANTICS §1) with optional masks and modifiers."""

    causal: bool = False
    # Keys at distance < window from the query's diagonal (i + Nk - Nq): with causal,
    # i - w < j <= i; without, |j - i| < w (a bidirectional window, 2w - 1 keys).
    window: Optional[int] = None
    scale: Optional[float] = None
    score_mod: Optional[Callable] = None
    mask_mod: Optional[Callable] = None
    name: str = "attention"
    # (block_q, block_k): key blocks to visit are listed per query block at call time
    # (`block_indices=`, int32 [B, H or 1, ceil(Nq / block_q), K], -1 padded), as MoBA /
    # NSA selections produce them.
    block_sparse: Optional[Tuple[int, int]] = None

    def __post_init__(self):
        if not isinstance(self.causal, bool):
            raise SpecError(f"causal must be a bool, got {type(self.causal).__name__}")
        if self.window is not None:
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
                raise SpecError(f"window must be a positive int, got {self.window!r}")
        if self.scale is not None:
            if not isinstance(self.scale, (int, float)) or not (self.scale > 0) or math.isinf(self.scale):
                raise SpecError(f"scale must be a positive finite number, got {self.scale!r}")
        if not self.name.isidentifier():
            raise SpecError(f"name must be an identifier, got {self.name!r}")
        if self.block_sparse is not None:
            bs = self.block_sparse
            if (not isinstance(bs, tuple) or len(bs) != 2 or
                    any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in bs)):
                raise SpecError(f"block_sparse must be (block_q, block_k) positive ints, got {bs!r}")
        # Trace now, so that a bad modifier fails where the spec is written.
        object.__setattr__(self, "_regions", self._trace())

    def _trace(self) -> Tuple[Optional[str], Optional[str], Dict[str, Buffer]]:
        buffers: Dict[str, Buffer] = {}
        score = mask = None
        if self.score_mod is not None:
            score, used = trace_region(self.score_mod, "score_mod")
            buffers.update(used)
        if self.mask_mod is not None:
            mask, used = trace_region(self.mask_mod, "mask_mod")
            for name, table in used.items():
                if not buffers.setdefault(name, table).same_as(table):
                    raise SpecError(f"score_mod and mask_mod read two different tables "
                                    f"named {name!r}")
        # Tables are SSA values named after them, beside the kernel's own operands and
        # the modifiers' arguments (a table "b" or "o" was a redefinition at parse time).
        reserved = sorted(n for n in buffers if n in _SSA_NAMES or n.startswith("d_"))
        if reserved:
            raise SpecError(f"buffer names {reserved} clash with q, k, v or another name of "
                            f"the kernel's operands and modifier arguments "
                            f"({', '.join(sorted(_SSA_NAMES))}, d_*)")
        return score, mask, buffers

    @property
    def buffers(self) -> Tuple[str, ...]:
        """Names of the tables the modifiers read, in call order."""
        return tuple(sorted(self._regions[2]))

    @property
    def tables(self) -> Tuple[Buffer, ...]:
        """The tables the modifiers read (name, dtype, rank), in call order."""
        return tuple(self._regions[2][n] for n in self.buffers)

    def to_mlir(self, dtype: str, head_dim: int, value_dim: int) -> str:
        """The attn module for one element type and head dims; B, H, N stay dynamic."""
        t = mlir_element_type(dtype)
        qt = f"tensor<?x?x?x{head_dim}x{t}>"
        vt = f"tensor<?x?x?x{value_dim}x{t}>"
        lt = "tensor<?x?x?xf32>"
        args = [f"%q: {qt}", f"%k: {qt}", f"%v: {vt}"]
        blocks = None
        if self.block_sparse is not None:
            blocks = ("%block_indices", "tensor<?x?x?x?xi32>")
            args.append(f"%block_indices: {blocks[1]}")
        args += [f"%{t.name}: {t.mlir_type}" for t in self.tables]
        op = self.op_text(("%o", "%lse"), ("%q", "%k", "%v"), (qt, qt, vt), (vt, lt), blocks)
        return (
            f"func.func @{self.name}({', '.join(args)}) -> ({vt}, {lt}) {{\n"
            f"{op}"
            f"  return %o, %lse : {vt}, {lt}\n"
            f"}}\n"
        )

    def op_text(self, results, operands, operand_types, result_types, blocks=None,
                op: str = "attn.attention", after_blocks: str = "") -> str:
        """One attn.attention op (or `op`, e.g. attn.attention_grad, with the same attributes
        and regions and `after_blocks`' operand groups): `results` = its result names,
        `blocks` = (name, type) of the block lists or None. Captured tables are read as
        `%<buffer name>`."""
        score, mask, _ = self._regions
        attrs = []
        if self.causal:
            attrs.append("causal")
        if self.window is not None:
            attrs.append(f"window = {self.window} : i64")
        if self.scale is not None:
            attrs.append(f"scale = {f32_literal(self.scale)} : f32")
        if self.block_sparse is not None:
            attrs += [f"block_q = {self.block_sparse[0]} : i64",
                      f"block_k = {self.block_sparse[1]} : i64"]
        attr_text = (" {" + ", ".join(attrs) + "}") if attrs else ""
        block_text = f" blocks({blocks[0]} : {blocks[1]})" if blocks else ""
        regions = ""
        if score:
            regions += "\n    score_mod {\n    " + score.replace("\n", "\n    ") + "\n    }"
        if mask:
            regions += "\n    mask_mod {\n    " + mask.replace("\n", "\n    ") + "\n    }"
        arrow = f" -> {', '.join(result_types)}" if result_types else ""
        return (f"  {', '.join(results)} = {op} {', '.join(operands)}"
                f"{block_text}{after_blocks}{attr_text}\n"
                f"      : {', '.join(operand_types)}{arrow}{regions}\n")

    def __call__(self, q, k, v, *, block_indices=None):
        """Inside a `tessera.program` function: this attention on program tensors,
        returning (o, lse) tensors (program.py's tensors trace it)."""
        attend = getattr(q, "attend", None)
        if attend is None:
            raise SpecError(f"tessera.attention: q must be a program tensor (call the spec "
                            f"inside a function given to tessera.program), got "
                            f"{type(q).__name__}")
        return attend(self, k, v, block_indices=block_indices)


def mlir_element_type(dtype: str) -> str:
    if dtype not in _MLIR_TYPES:
        raise SpecError(f"dtype must be one of {sorted(_MLIR_TYPES)}, got {dtype!r}")
    return _MLIR_TYPES[dtype]


def attention(*, causal: bool = False, window: Optional[int] = None,
              scale: Optional[float] = None, score_mod: Optional[Callable] = None,
              mask_mod: Optional[Callable] = None, name: str = "attention",
              block_sparse: Optional[Tuple[int, int]] = None) -> AttentionSpec:
    """A softmax-attention spec.

    score_mod(score, b, h, q_idx, kv_idx) -> new score and mask_mod(b, h, q_idx, kv_idx)
    -> bool are plain Python functions, traced once (as FlexAttention does); use
    tessera.where / exp / tanh / minimum / maximum and '&', '|', '~' inside them.
    """
    return AttentionSpec(causal=causal, window=window, scale=scale, score_mod=score_mod,
                         mask_mod=mask_mod, name=name, block_sparse=block_sparse)
