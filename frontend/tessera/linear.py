"""Linear attention specs (SEMANTICS.md §2): Lightning Attention-2, plain causal linear
attention, feature-mapped variants, and the recurrent decode step; all one attn op."""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import numpy as np

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


class LinearKernel:
    """A linear-attention spec compiled for the CPU; any B, H, N."""

    def __init__(self, spec: LinearAttentionSpec, dtype, head_dim, value_dim, config):
        from . import _core
        self.spec, self.dtype, self.config = spec, dtype, config
        self.head_dim, self.value_dim = head_dim, value_dim
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._impl = _core.CpuKernel(self.module, spec.name, **config.as_kwargs())

    def ir(self, stage: str = "attn") -> str:
        from . import _core
        return _core.lower(self.module, stage, **self.config.as_kwargs())

    def grad(self, q, k, v, grad_out, **inputs):
        """(dq, dk, dv) of the spec's output for the upstream gradient `grad_out`; dk and
        dv sum over the query heads of each GQA group."""
        from . import _core
        from .kernel import _as_array, _output
        if self.spec.decode:
            raise SpecError("a decode step has no gradient kernel; differentiate the prefill")
        if getattr(self, "_grad", None) is None:
            module = _grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim)
            self._grad = _core.CpuKernel(module, self.spec.name + "_grad", **self.config.as_kwargs())
        q, k, v, g = (_as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (grad_out, "grad_out")))
        self._check(q, k, v)
        if g.shape != q.shape[:3] + (self.value_dim,) or g.dtype != np.float32:
            raise ValueError(f"grad_out must be float32 of shape {q.shape[:3] + (self.value_dim,)}, got {g.dtype} {g.shape}")
        extras = self._extras(q, inputs)
        dq, dk, dv = np.empty_like(q), np.empty(k.shape, np.float32), np.empty(v.shape, np.float32)
        self._grad.run([q, k, v, g, *extras, dq, dk, dv])
        return dq, dk, dv

    def __call__(self, q, k, v, *, out=None, state_out=None, **inputs):
        from .kernel import _as_array, _check_strides, _output
        q, k, v = (_as_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
        self._check(q, k, v)
        extras = self._extras(q, inputs)
        B, H, N, D = q.shape
        out = _output(out, (B, H, N, self.value_dim), q.dtype, "out")
        state_out = _output(state_out, (B, H, D, self.value_dim), np.dtype(np.float32), "state_out")
        self._impl.run([q, k, v, *extras, out, state_out])
        return out, state_out

    def _check(self, q, k, v):
        from .kernel import _check_strides, check_qkv_shapes
        for a, n in ((q, "q"), (k, "k"), (v, "v")):
            if a.ndim != 4:
                raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got shape {a.shape}")
            if a.dtype != np.float32:
                raise TypeError(f"{n} has dtype {a.dtype}; this kernel takes float32")
            _check_strides(a, n)
        check_qkv_shapes(q.shape, k.shape, v.shape, self.head_dim, self.value_dim,
                         same_length=True)
        if self.spec.decode and q.shape[2] != 1:
            raise ValueError(f"a decode step takes one token, got {q.shape[2]}")

    def _extras(self, q, inputs):
        """The call-time inputs (state, decay, initial_state), checked, in kernel order."""
        from .kernel import _as_array, _check_strides, check_names
        B, H, _, D = q.shape
        check_names("inputs", self.spec.extra_inputs, inputs)
        shapes = {"state": (B, H, D, self.value_dim), "initial_state": (B, H, D, self.value_dim),
                  "decay": (H,)}
        extras = []
        for name in self.spec.extra_inputs:
            a = _as_array(inputs[name], name)
            if a.shape != shapes[name] or a.dtype != np.float32:
                raise ValueError(f"{name} must be float32 of shape {shapes[name]}, got {a.dtype} {a.shape}")
            if name == "decay" and not np.all((a > 0) & (a <= 1)):
                raise ValueError("decay values must lie in (0, 1]")
            _check_strides(a, name)
            extras.append(a)
        return extras


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
    from .kernel import Config
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


class LinearGpuKernel:
    """A linear-attention spec compiled to PTX: bf16/f16 q, k, v, f32 state; any B, H, N.
    With `config.split` = s, each (head, batch) runs as s programs: pieces of the value
    columns (16 x num_warps each where they divide, else 16 or more), times chunks of the
    sequence, for more parallelism when batch x heads is small. Compiled without a config
    (`config=None`), a causal prefill picks s per call from B·H and N (`shape_split`),
    compiling each s on first use (the on-disk cache keeps them)."""

    def __init__(self, spec: LinearAttentionSpec, dtype, head_dim, value_dim, config, chip):
        from .gpu import GpuKernel
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
        from .gpu import torch_module
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
        from .gpu import _check_cuda_tensor
        if self.spec.decode:
            raise SpecError("a decode step has no gradient kernel; differentiate the prefill")
        extras = self._checked(q, k, v, inputs)
        B, H, N, _ = q.shape
        _check_cuda_tensor(grad_out, "grad_out", q.dtype, q.device)
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
        from .gpu import _Image
        if getattr(self, "_grad", None) is None:
            module = _grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim)
            self._grad = _Image(module, self.spec.name + "_grad", self.config, self.chip)
        return self._grad

    def _forward(self, q, k, v, out, state_out, inputs):
        from .gpu import _output_tensor, torch_module
        torch = torch_module()
        extras = self._checked(q, k, v, inputs)
        B, H, N, D = q.shape
        out = _output_tensor(out, (B, H, N, self.value_dim), q.dtype, q.device, "out")
        state_out = _output_tensor(state_out, (B, H, D, self.value_dim), torch.float32,
                                   q.device, "state_out")
        self._image.launch([q, k, v, *extras, out, state_out])
        return out, state_out

    def _checked(self, q, k, v, inputs):
        """The call-time inputs (decay, initial_state, state) in kernel order, checked
        with q, k, v."""
        from .gpu import _check_cuda_tensor, check_qkv_tensors, torch_module
        from .kernel import check_names, check_qkv_shapes
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
            _check_cuda_tensor(a, name, torch.float32, q.device)
            if tuple(a.shape) != shapes[name]:
                raise ValueError(f"{name} must be float32 of shape {shapes[name]}, got {tuple(a.shape)}")
            if name == "decay":
                check_decay(a)
            extras.append(a)
        return extras


_CHECKED_DECAYS = None  # decay tensor -> the version of it checked


def check_decay(decay) -> None:
    """Checks that a GPU decay tensor's values lie in (0, 1], once per tensor version (the
    check waits for the GPU): calls with a checked tensor neither check nor synchronise,
    so a CUDA graph can capture them. Call it before capturing a graph (or run one call
    first); a replay does not see values written into the tensor later."""
    global _CHECKED_DECAYS
    import torch
    if _CHECKED_DECAYS is None:
        from torch.utils.weak import WeakIdKeyDictionary
        _CHECKED_DECAYS = WeakIdKeyDictionary()
    if _CHECKED_DECAYS.get(decay) == decay._version:
        return
    if torch.cuda.is_current_stream_capturing():
        raise ValueError("decay was not checked before this CUDA graph capture (the check "
                         "waits for the GPU): call tessera.linear.check_decay(decay), or run "
                         "one call, before capturing")
    if not bool(((decay > 0) & (decay <= 1)).all()):
        raise ValueError("decay values must lie in (0, 1]")
    _CHECKED_DECAYS[decay] = decay._version


@functools.lru_cache(maxsize=None)
def _sm_count(device) -> int:
    """Streaming multiprocessors of a CUDA device (132, an H200's, where torch cannot say)."""
    try:
        from .gpu import torch_module
        return torch_module().cuda.get_device_properties(device).multi_processor_count
    except Exception:
        return 132


@functools.lru_cache(maxsize=None)
def _linear_function():
    """torch.autograd.Function for GPU linear attention, defined on first use (torch is
    imported lazily)."""
    import torch

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
