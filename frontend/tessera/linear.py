"""Linear attention specs (SEMANTICS.md §2): Lightning Attention-2, plain causal linear
attention, feature-mapped variants, and the recurrent decode step; all one attn op."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from .checks import check_decay  # noqa: F401  (tessera.linear.check_decay, documented)
from .config import Config
from .spec import _MLIR_TYPES, mlir_element_type
from .trace import SpecError, f32_literal

FEATURE_MAPS = ("identity", "elu_plus_one", "relu")


@dataclasses.dataclass(frozen=True)
class LinearAttentionSpec:
    """o_t = τ φ(q_t) S_t with S_t = λ S_{t-1} + φ(k_t)ᵀ v_t (causal), or O = τ φ(Q)(φ(K)ᵀV).

    decay: a per-head λ in (0, 1] is passed at call time (`decay=` array of H floats).
    initial_state: an f32 [B, H, D, Dv] state is passed at call time (`initial_state=`).
    decode: one token per call against a state (`state=`), returning the new state.
    """

    causal: bool = True
    decay: bool = False
    feature_map: str = "identity"
    scale: Optional[float] = None
    initial_state: bool = False
    decode: bool = False
    name: str = "linear_attention"

    def __post_init__(self):
        for field in ("causal", "decay", "initial_state", "decode"):
            if not isinstance(getattr(self, field), bool):
                raise SpecError(f"{field} must be a bool, got {getattr(self, field)!r}")
        if self.feature_map not in FEATURE_MAPS:
            raise SpecError(f"feature_map must be one of {FEATURE_MAPS}, got {self.feature_map!r}")
        if self.decay and not self.causal:
            raise SpecError("decay needs causal=True")
        if self.decode and (self.initial_state or not self.causal):
            raise SpecError("decode is the causal recurrence against `state`; it takes no initial_state")
        if self.scale is not None and (not isinstance(self.scale, (int, float)) or
                                       not (self.scale > 0) or math.isinf(self.scale)):
            raise SpecError(f"scale must be a positive finite number, got {self.scale!r}")
        if not self.name.isidentifier():
            raise SpecError(f"name must be an identifier, got {self.name!r}")

    @property
    def extra_inputs(self):
        """Call-time inputs after q, k, v, in the kernel's order."""
        names = ["state"] if self.decode else []
        if self.decay:
            names.append("decay")
        if self.initial_state:
            names.append("initial_state")
        return tuple(names)

    def to_mlir(self, dtype: str, head_dim: int, value_dim: int) -> str:
        t = mlir_element_type(dtype)
        n = "1" if self.decode else "?"
        qt, vt = f"tensor<?x?x{n}x{head_dim}x{t}>", f"tensor<?x?x{n}x{value_dim}x{t}>"
        st = f"tensor<?x?x{head_dim}x{value_dim}xf32>"
        args = [f"%q: {qt}", f"%k: {qt}", f"%v: {vt}"]
        types = {"state": st, "decay": "tensor<?xf32>", "initial_state": st}
        args += [f"%{a}: {types[a]}" for a in self.extra_inputs]
        attrs = [f"feature_map = #attn.feature_map<{self.feature_map}>"]
        if self.causal and not self.decode:
            attrs.append("causal")
        if self.scale is not None:
            attrs.append(f"scale = {f32_literal(self.scale)} : f32")
        operands = "%q, %k, %v" + (", %state" if self.decode else "")
        if self.decay:
            operands += " decay(%decay : tensor<?xf32>)"
        if self.initial_state:
            operands += f" initial_state(%initial_state : {st})"
        op = "attn.linear_decode" if self.decode else "attn.linear_attention"
        in_types = f"{qt}, {qt}, {vt}" + (f", {st}" if self.decode else "")
        return (f"func.func @{self.name}({', '.join(args)}) -> ({vt}, {st}) {{\n"
                f"  %o, %s = {op} {operands} {{{', '.join(attrs)}}}\n"
                f"      : {in_types} -> {vt}, {st}\n"
                f"  return %o, %s : {vt}, {st}\n}}\n")


def _grad_mlir(spec: LinearAttentionSpec, dtype: str, head_dim: int, value_dim: int) -> str:
    """The gradient module of a (non-decode) linear-attention spec."""
    t = _MLIR_TYPES[dtype]
    qt, vt = f"tensor<?x?x?x{head_dim}x{t}>", f"tensor<?x?x?x{value_dim}x{t}>"
    st = f"tensor<?x?x{head_dim}x{value_dim}xf32>"
    types = {"decay": "tensor<?xf32>", "initial_state": st}
    args = [f"%q: {qt}", f"%k: {qt}", f"%v: {vt}", f"%do: {vt}"]
    args += [f"%{a}: {types[a]}" for a in spec.extra_inputs]
    operands = "%q, %k, %v, %do"
    if spec.decay:
        operands += " decay(%decay : tensor<?xf32>)"
    if spec.initial_state:
        operands += f" initial_state(%initial_state : {st})"
    attrs = [f"feature_map = #attn.feature_map<{spec.feature_map}>"]
    if spec.causal:
        attrs.append("causal")
    if spec.scale is not None:
        attrs.append(f"scale = {f32_literal(spec.scale)} : f32")
    return (f"func.func @{spec.name}_grad({', '.join(args)}) -> ({qt}, {qt}, {vt}) {{\n"
            f"  %dq, %dk, %dv = attn.linear_attention_grad {operands} {{{', '.join(attrs)}}}\n"
            f"      : {qt}, {qt}, {vt}, {vt} -> {qt}, {qt}, {vt}\n"
            f"  return %dq, %dk, %dv : {qt}, {qt}, {vt}\n}}\n")


def linear_attention(*, causal: bool = True, decay: bool = False,
                     feature_map: str = "identity", scale: Optional[float] = None,
                     initial_state: bool = False, name: str = "linear_attention"):
    """A linear-attention spec; Lightning Attention-2 is `linear_attention(decay=True)`."""
    return LinearAttentionSpec(causal=causal, decay=decay, feature_map=feature_map,
                               scale=scale, initial_state=initial_state, name=name)


def linear_decode(*, decay: bool = False, feature_map: str = "identity",
                  scale: Optional[float] = None, name: str = "linear_decode"):
    """One recurrent step: (q, k, v of one token, state) -> (o, new state)."""
    return LinearAttentionSpec(causal=True, decay=decay, feature_map=feature_map,
                               scale=scale, decode=True, name=name)


def alibi_decay(heads: int) -> np.ndarray:
    """Lightning Attention-2's per-head decay λ_h = exp(-s_h), s_h = 2^(-8(h+1)/H)."""
    h = np.arange(heads, dtype=np.float64)
    return np.exp(-(2.0 ** (-8.0 * (h + 1) / heads))).astype(np.float32)


def default_gpu_config(value_dim: int, decode: bool = False, split: Optional[int] = None,
                       head_dim: int = 64):
    """The GPU config a linear-attention kernel gets unless told otherwise: the value
    columns in pieces of 64, one program each (a piece's state is carried as Sᵀ over the 4
    warps' rows, so every product runs on wgmma), times `split` / pieces sequence chunks
    (the kernel picks `split` per call, `shape_split`). A decode step, and value dims that
    are not multiples of 64, take 4 or 2 pieces of a multiple of 16 columns, or one. The
    state's D rows are spread over the warps in 16-row blocks: head dims that are no
    multiple of 64 (80, 96, 160, ...) take 2 warps (multiples of 32) or 1, and pieces of
    16 value columns, so that a thread's share of the state stays in registers."""
    warps = next(w for w in (4, 2, 1) if head_dim % (16 * w) == 0 or w == 1)
    if value_dim % 64 == 0 and not decode and warps == 4:
        pieces = value_dim // 64
    elif warps < 4 and value_dim % 16 == 0:  # fewer warps: narrower pieces of the state
        pieces = value_dim // 16
    else:
        pieces = next((s for s in (4, 2) if value_dim % s == 0 and value_dim // s % 16 == 0), 1)
    # With fewer warps, a thread holds more of each tile: one stage leaves them registers.
    return Config(block_m=16 * warps, block_n=64, num_warps=warps,
                  num_stages=2 if warps == 4 else 1, split=split or pieces)


def shape_split(pieces: int, batch_heads: int, seq_len: int, sms: int) -> int:
    """Programs per (head, batch) for a causal sweep of `seq_len` tokens over
    `batch_heads` heads: `pieces` value pieces times sequence chunks. Two sweep programs
    fit an SM (registers), and one wave of them is fastest: pieces alone when they fill
    it, else as many chunks as still fit in one wave, each at least 4 blocks of 64
    tokens. On the H200 (bench/results/linear_c5b63b7.jsonl, every split timed) that
    picks the fastest split at B·H = 1024, 256, 64 and 16 (N = 65536), and 16 against
    32's 2.55 ms at N = 262144 (2.59 ms); 1.45 waves (split 6 at B·H = 64) lose 18 %.
    Chunks are not free: each reads its keys and values twice (its own state, then the
    sweep), and a scan joins the states."""
    wave = 2 * sms
    chunks = min(wave // (batch_heads * pieces), seq_len // 256)
    return pieces * max(1, chunks)


def reference(q, k, v, *, causal=True, decay=None, feature_map="identity", scale=None,
              initial_state=None):
    """Float64 linear attention (SEMANTICS.md §2): (O, final state)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    phi = {"identity": lambda x: x, "relu": lambda x: np.maximum(x, 0),
           "elu_plus_one": lambda x: np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))}[feature_map]
    q, k = phi(q), phi(k)
    B, H, N, D = q.shape
    G = H // k.shape[1]
    tau = 1.0 if scale is None else scale
    out = np.zeros((B, H, N, v.shape[3]))
    state = np.zeros((B, H, D, v.shape[3]))
    t = np.arange(N)
    for b in range(B):
        for h in range(H):
            kh, vh = k[b, h // G], v[b, h // G]
            s0 = np.zeros((D, v.shape[3])) if initial_state is None else np.asarray(initial_state[b, h], np.float64)
            lam = 1.0 if decay is None else float(decay[h])
            if causal:
                m = np.where(t[:, None] >= t[None, :], lam ** np.maximum(t[:, None] - t[None, :], 0), 0.0)
                out[b, h] = tau * (((q[b, h] @ kh.T) * m) @ vh + (lam ** (t + 1))[:, None] * (q[b, h] @ s0))
                state[b, h] = lam ** N * s0 + (kh * (lam ** (N - 1 - t))[:, None]).T @ vh
            else:
                s = s0 + kh.T @ vh
                out[b, h] = tau * q[b, h] @ s
                state[b, h] = s
    return out, state


def reference_grad(q, k, v, grad_out, *, decay=None, feature_map="identity", scale=None,
                   initial_state=None):
    """Float64 gradients (dq, dk, dv) of causal linear attention for upstream `grad_out`."""
    q, k, v, g = (np.asarray(x, np.float64) for x in (q, k, v, grad_out))
    phi, dphi = {
        "identity": (lambda x: x, lambda x: np.ones_like(x)),
        "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(np.float64)),
        "elu_plus_one": (lambda x: np.where(x > 0, x + 1, np.exp(np.minimum(x, 0))),
                         lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    }[feature_map]
    B, H, N, D = q.shape
    G = H // k.shape[1]
    tau = 1.0 if scale is None else scale
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    t = np.arange(N)
    for b in range(B):
        for h in range(H):
            hk = h // G
            qp, kp, vh, gh = phi(q[b, h]), phi(k[b, hk]), v[b, hk], tau * g[b, h]
            lam = 1.0 if decay is None else float(decay[h])
            m = np.where(t[:, None] >= t[None, :], lam ** np.maximum(t[:, None] - t[None, :], 0), 0.0)
            s0 = (np.zeros((D, v.shape[3])) if initial_state is None
                  else np.asarray(initial_state[b, h], np.float64))
            ds = (gh @ vh.T) * m
            dq[b, h] = (ds @ kp + (lam ** (t + 1))[:, None] * (gh @ s0.T)) * dphi(q[b, h])
            dk[b, hk] += (ds.T @ qp) * dphi(k[b, hk])
            dv[b, hk] += ((qp @ kp.T) * m).T @ gh
    return dq, dk, dv
