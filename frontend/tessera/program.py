"""Programs: attention variants composed from several attn ops (MoBA, NSA, HyperAttention).

    def moba(q, k, v):
        kb = tessera.compress(k, block=512)
        idx = tessera.block_topk(q, kb, block_q=1, block_k=512, k=3, causal=True,
                                 include_current=True)
        o, _ = tessera.attention(causal=True, block_sparse=(1, 512))(q, k, v, block_indices=idx)
        return o

    spec = tessera.program(moba, q="B H N D", k="B G N D", v="B G N Dv")
    o = tessera.compile(spec, head_dim=64)(q, k, v)

Each input is declared by a shape string: upper-case names are sizes known at call time
(the same name means the same size), integers are fixed, and `D` / `Dv` are the head and
value dims given to `compile`. An input is in the kernel's dtype unless declared as
(shape, "float32" | "int32"). The function is traced into one func of attn ops; each op
becomes its own tile program (docs/ARCHITECTURE.md), intermediates live in buffers the
kernel allocates.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from .spec import AttentionSpec, mlir_element_type
from .table_bounds import check_table_extents
from .trace import SpecError, f32_literal

_RESERVED = {"b", "h", "q_idx", "kv_idx", "score"}  # names of modifier arguments
_ELEMENT = "element"  # the kernel's dtype
_FIXED_TYPES = {"float32": "f32", "int32": "i32"}

Dim = Union[int, str, Callable[[Dict[str, int]], int]]


class Tensor:
    """A value inside a program trace: its SSA name, dims and element kind."""

    def __init__(self, tracer: "_Tracer", name: str, dims: Sequence[Dim], kind: str) -> None:
        self._tracer, self.name, self.dims, self.kind = tracer, name, tuple(dims), kind

    @property
    def rank(self) -> int:
        return len(self.dims)

    def mlir_type(self) -> str:
        return self._tracer.type_of(self)

    def __repr__(self) -> str:
        return f"tessera.program tensor {self.name} of rank {self.rank}"

    def __bool__(self):
        raise SpecError("a program tensor has no truth value at trace time")

    def attend(self, spec: AttentionSpec, k, v, block_indices) -> Tuple["Tensor", "Tensor"]:
        """spec(self, k, v): how an attention spec applies itself to program tensors."""
        return apply_attention(spec, self, k, v, block_indices)


class _Tracer:
    """Collects the attn ops a program function applies."""

    active: Optional["_Tracer"] = None

    def __init__(self, dtype: str, head_dim: int, value_dim: int) -> None:
        self.element = mlir_element_type(dtype)
        self.head_dim, self.value_dim = head_dim, value_dim
        self.lines: List[str] = []
        self.counter = 0
        self.inputs: Dict[str, Tensor] = {}
        # (spec, q dims, k dims) of each attention: its tables are checked at call time.
        self.attentions: List[tuple] = []

    def fresh(self) -> str:
        self.counter += 1
        return f"%p.{self.counter}"  # '.': never an input's name (a Python identifier)

    def static(self, dim: Dim) -> Optional[int]:
        if isinstance(dim, int):
            return dim
        if dim == "D":
            return self.head_dim
        if dim == "Dv":
            return self.value_dim
        return None

    def type_of(self, t: Tensor) -> str:
        dims = "x".join("?" if self.static(d) is None else str(self.static(d)) for d in t.dims)
        elem = self.element if t.kind == _ELEMENT else _FIXED_TYPES[t.kind]
        return f"tensor<{dims}x{elem}>"

    def result(self, dims, kind) -> Tensor:
        return Tensor(self, self.fresh(), dims, kind)

    def emit(self, results: Sequence[Tensor], op: str, operands: Sequence[Tensor],
             attrs: str = "", operand_text: Optional[str] = None) -> None:
        names = ", ".join(r.name for r in results)
        text = operand_text or ", ".join(o.name for o in operands)
        types = ", ".join(o.mlir_type() for o in operands)
        out_types = ", ".join(r.mlir_type() for r in results)
        self.lines.append(f"  {names} = {op} {text}{attrs} : {types} -> {out_types}\n")


def _tracer(op: str) -> _Tracer:
    if _Tracer.active is None:
        raise SpecError(f"tessera.{op} builds a program: call it inside a function given "
                        f"to tessera.program")
    return _Tracer.active


def _tensor(x, op: str, what: str, rank=None, kinds=None) -> Tensor:
    if not isinstance(x, Tensor):
        raise SpecError(f"tessera.{op}: {what} must be a program tensor, got {type(x).__name__}")
    if rank is not None and x.rank not in ((rank,) if isinstance(rank, int) else rank):
        raise SpecError(f"tessera.{op}: {what} must have rank {rank}, got {x.rank}")
    if kinds is not None and x.kind not in kinds:
        raise SpecError(f"tessera.{op}: {what} must be {' or '.join(kinds)}, got {x.kind}")
    return x


def _positive(op: str, **values) -> None:
    for n, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"tessera.{op}: {n} must be a positive int, got {v!r}")


def _derived(f: Callable[..., int], *dims: Dim) -> Dim:
    """A dim computed from other dims at call time (static when they all are)."""
    if all(isinstance(d, int) for d in dims):
        return f(*dims)
    return lambda env: f(*(dim_value(d, env) for d in dims))


def dim_value(dim: Dim, env: Dict[str, int]) -> int:
    if isinstance(dim, int):
        return dim
    if isinstance(dim, str):
        return env[dim]
    return dim(env)


# ----------------------------------------------------------------------------- ops

def compress(x: Tensor, *, block: int, stride: Optional[int] = None) -> Tensor:
    """Mean of each block of rows: [B, H, N, D] -> [B, H, (N - block) // stride + 1, D]."""
    t = _tracer("compress")
    stride = block if stride is None else stride
    _positive("compress", block=block, stride=stride)
    x = _tensor(x, "compress", "x", 4, (_ELEMENT,))
    nb = _derived(lambda n: (n - block) // stride + 1 if n >= block else 0, x.dims[2])
    out = t.result((x.dims[0], x.dims[1], nb, x.dims[3]), x.kind)
    t.emit([out], "attn.compress", [x], f" {{block = {block} : i64, stride = {stride} : i64}}")
    return out


def block_topk(q: Tensor, block_keys: Tensor, *, block_q: int, block_k: int, k: int,
               causal: bool = False, include_current: bool = False,
               group_heads: bool = False, score: str = "dot",
               scale: Optional[float] = None) -> Tensor:
    """Per query block, the k best key blocks by a gate score (see attn.block_topk)."""
    t = _tracer("block_topk")
    _positive("block_topk", block_q=block_q, block_k=block_k, k=k)
    if score not in ("dot", "softmax"):
        raise SpecError(f"tessera.block_topk: score must be 'dot' or 'softmax', got {score!r}")
    q = _tensor(q, "block_topk", "q", 4, (_ELEMENT,))
    kb = _tensor(block_keys, "block_topk", "block_keys", 4, (_ELEMENT,))
    blocks = _derived(lambda n: -(-n // block_q), q.dims[2])
    out = t.result((q.dims[0], q.dims[1], blocks, k), "int32")
    attrs = [f"block_q = {block_q} : i64", f"block_k = {block_k} : i64", f"k = {k} : i64"]
    attrs += [n for n, on in (("causal", causal), ("include_current", include_current),
                              ("group_heads", group_heads)) if on]
    if score != "dot":
        attrs.append(f"score = #attn.block_score<{score}>")
    if scale is not None:
        attrs.append(f"scale = {f32_literal(scale)} : f32")
    t.emit([out], "attn.block_topk", [q, kb], " {" + ", ".join(attrs) + "}")
    return out


def lsh_sort(x: Tensor, projection: Tensor) -> Tensor:
    """The permutation sorting rows by their Gray-ordered angular LSH bucket."""
    t = _tracer("lsh_sort")
    x = _tensor(x, "lsh_sort", "x", 4, (_ELEMENT,))
    r = _tensor(projection, "lsh_sort", "projection", 2, ("float32",))
    out = t.result(x.dims[:3], "int32")
    t.emit([out], "attn.lsh_sort", [x, r])
    return out


def _rows_op(op: str, x: Tensor, indices: Tensor) -> Tensor:
    t = _tracer(op)
    x = _tensor(x, op, "x", (3, 4))
    idx = _tensor(indices, op, "indices", (1, 3), ("int32",))
    dims = list(x.dims)
    dims[2] = idx.dims[-1]
    out = t.result(dims, x.kind)
    t.emit([out], f"attn.{op}", [x, idx], operand_text=f"{x.name}[{idx.name}]")
    return out


def gather_rows(x: Tensor, indices: Tensor) -> Tensor:
    """out[b, h, i] = x[b, h, indices[(b, h,) i]] (zeros for out-of-range indices)."""
    return _rows_op("gather_rows", x, indices)


def scatter_rows(y: Tensor, indices: Tensor) -> Tensor:
    """The inverse of gather_rows for a permutation: out[b, h, indices[i]] = y[b, h, i]."""
    return _rows_op("scatter_rows", y, indices)


def merge(out_a: Tensor, lse_a: Tensor, out_b: Tensor, lse_b: Tensor) -> Tuple[Tensor, Tensor]:
    """Log-sum-exp merge of two partial attentions over disjoint keys (SEMANTICS §6)."""
    t = _tracer("merge")
    oa, ob = (_tensor(x, "merge", n, 4) for x, n in ((out_a, "out_a"), (out_b, "out_b")))
    la, lb = (_tensor(x, "merge", n, 3, ("float32",)) for x, n in ((lse_a, "lse_a"), (lse_b, "lse_b")))
    o, l = t.result(oa.dims, oa.kind), t.result(la.dims, "float32")
    t.lines.append(f"  {o.name}, {l.name} = attn.merge {oa.name}, {la.name}, {ob.name}, "
                   f"{lb.name} : {oa.mlir_type()}, {la.mlir_type()}\n")
    return o, l


def gate(gates: Tensor, *partials: Tensor) -> Tensor:
    """o = sum_i gates[..., i] * partials[i] (NSA's gated branches)."""
    t = _tracer("gate")
    g = _tensor(gates, "gate", "gates", 4)
    if not partials:
        raise SpecError("tessera.gate needs at least one partial output")
    ps = [_tensor(p, "gate", f"partial {i}", 4) for i, p in enumerate(partials)]
    out = t.result(ps[0].dims, ps[0].kind)
    t.emit([out], "attn.gate", [g, *ps])
    return out


def apply_attention(spec: AttentionSpec, q, k, v, block_indices) -> Tuple[Tensor, Tensor]:
    t = _tracer("attention")
    q, k, v = (_tensor(x, "attention", n, 4, (_ELEMENT,)) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    blocks = None
    if (block_indices is None) != (spec.block_sparse is None):
        raise SpecError("block_indices= goes with a spec made with block_sparse=(block_q, block_k)")
    if block_indices is not None:
        idx = _tensor(block_indices, "attention", "block_indices", 4, ("int32",))
        blocks = (idx.name, idx.mlir_type())
    missing = [b.name for b in spec.tables if b.name not in t.inputs
               or t.inputs[b.name].rank != b.rank or t.inputs[b.name].kind != b.dtype]
    if missing:
        raise SpecError(f"the modifiers read buffers {missing}: declare each as a program "
                        f"input of the same name, rank and dtype as its tessera.Buffer")
    t.attentions.append((spec, q.dims, k.dims))
    o = t.result((q.dims[0], q.dims[1], q.dims[2], v.dims[3]), q.kind)
    lse = t.result(q.dims[:3], "float32")
    t.lines.append(spec.op_text((o.name, lse.name), (q.name, k.name, v.name),
                                (q.mlir_type(), k.mlir_type(), v.mlir_type()),
                                (o.mlir_type(), lse.mlir_type()), blocks))
    return o, lse


# ----------------------------------------------------------------------------- spec

@dataclasses.dataclass(frozen=True)
class InputDecl:
    name: str
    dims: Tuple[Dim, ...]
    kind: str  # "element", "float32" or "int32"


def _parse_input(name: str, decl) -> InputDecl:
    shape, kind = (decl, _ELEMENT) if isinstance(decl, str) else (tuple(decl) + (None,))[:2]
    if not isinstance(shape, str) or kind not in (_ELEMENT, *_FIXED_TYPES):
        raise SpecError(f"input {name!r}: declare a shape string such as 'B H N D', "
                        f"optionally as (shape, 'float32' | 'int32'), got {decl!r}")
    dims: List[Dim] = []
    for tok in shape.split():
        if tok.isdigit():
            dims.append(int(tok))
        elif tok.isidentifier():
            dims.append(tok)
        else:
            raise SpecError(f"input {name!r}: bad dim {tok!r} in {shape!r}")
    if not dims:
        raise SpecError(f"input {name!r}: the shape {shape!r} has no dims")
    return InputDecl(name, tuple(dims), kind)


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """A function of attn ops over declared inputs (see the module docstring)."""

    fn: Callable
    inputs: Tuple[InputDecl, ...]
    name: str

    def trace(self, dtype: str, head_dim: int, value_dim: int):
        """(module text, output tensors) for one dtype and head dims."""
        t = _Tracer(dtype, head_dim, value_dim)
        t.inputs = {d.name: Tensor(t, f"%{d.name}", d.dims, d.kind) for d in self.inputs}
        _Tracer.active = t
        try:
            result = self.fn(*t.inputs.values())
        finally:
            _Tracer.active = None
        object.__setattr__(self, "_attentions", tuple(t.attentions))
        outputs = result if isinstance(result, tuple) else (result,)
        if not outputs or not all(isinstance(o, Tensor) for o in outputs):
            raise SpecError(f"program {self.name!r} must return program tensors, got {result!r}")
        if any(o.name in {i.name for i in t.inputs.values()} for o in outputs):
            raise SpecError(f"program {self.name!r} returns an input unchanged")
        args = ", ".join(f"{i.name}: {i.mlir_type()}" for i in t.inputs.values())
        out_types = ", ".join(o.mlir_type() for o in outputs)
        text = (f"func.func @{self.name}({args}) -> ({out_types}) {{\n" + "".join(t.lines)
                + f"  return {', '.join(o.name for o in outputs)} : {out_types}\n}}\n")
        return text, outputs

    def to_mlir(self, dtype: str, head_dim: int, value_dim: int) -> str:
        return self.trace(dtype, head_dim, value_dim)[0]


def program(fn: Callable, *, name: Optional[str] = None, **inputs) -> ProgramSpec:
    """A program spec from `fn(*inputs)`; each keyword declares one input, in `fn`'s
    parameter order."""
    if not callable(fn):
        raise SpecError(f"program takes a function, got {type(fn).__name__}")
    params = list(inspect.signature(fn).parameters)
    if set(params) != set(inputs):
        raise SpecError(f"declare every parameter of {fn.__name__} as an input: parameters "
                        f"{params}, declared {sorted(inputs)}")
    for p in params:
        if p in _RESERVED:
            raise SpecError(f"input name {p!r} is reserved for modifier arguments")
    if name is None:  # a lambda's name is not a symbol
        name = fn.__name__ if fn.__name__.isidentifier() else "program"
    if not name.isidentifier():
        raise SpecError(f"name must be an identifier, got {name!r}")
    spec = ProgramSpec(fn, tuple(_parse_input(p, inputs[p]) for p in params), name)
    spec.trace("float32", 64, 64)  # a bad program fails where it is written
    return spec


def _check_tables(spec: ProgramSpec, env: Dict[str, int], shapes: Dict[str, tuple]) -> None:
    """Each attention's tables against the indices its modifiers read, at the sizes its
    q and k have for these inputs (table_bounds.py)."""
    for attention, q_dims, k_dims in spec._attentions:
        if attention.tables:
            batch, heads, n_q = (dim_value(d, env) for d in q_dims[:3])
            check_table_extents(attention, batch, heads, n_q, dim_value(k_dims[2], env), shapes)


def _given(spec: ProgramSpec, args, kwargs) -> list:
    """The inputs of a call, in declared order, positional or by name."""
    decls = spec.inputs
    if len(args) > len(decls):
        raise TypeError(f"{spec.name} takes {len(decls)} inputs, got {len(args)}")
    given = dict(zip((d.name for d in decls), args))
    for n, x in kwargs.items():
        if n in given or n not in {d.name for d in decls}:
            raise TypeError(f"{spec.name}: unexpected or repeated input {n!r}")
        given[n] = x
    missing = [d.name for d in decls if d.name not in given]
    if missing:
        raise TypeError(f"{spec.name}: missing inputs {missing}")
    return [given[d.name] for d in decls]


def _check_inputs(decls, values, dtype_of, wanted, head_dim, value_dim) -> Dict[str, int]:
    """Checks each input's dtype, rank and dims against its declaration; returns the
    sizes the names stand for."""
    env = {"D": head_dim, "Dv": value_dim}
    where: Dict[str, str] = {"D": "head_dim", "Dv": "value_dim"}
    for d, x in zip(decls, values):
        if dtype_of(x) != wanted(d):
            raise TypeError(f"input {d.name!r} has dtype {dtype_of(x)}; it is declared {wanted(d)}")
        shape = tuple(x.shape)
        if len(shape) != len(d.dims):
            raise ValueError(f"input {d.name!r} must have rank {len(d.dims)} "
                             f"({' '.join(map(str, d.dims))}), got shape {shape}")
        for i, (dim, size) in enumerate(zip(d.dims, shape)):
            if isinstance(dim, int):
                if size != dim:
                    raise ValueError(f"input {d.name!r} dim {i} must be {dim}, got {size}")
            elif dim in env and env[dim] != size:
                raise ValueError(f"input {d.name!r} dim {i} ({dim}) is {size}, but {dim} = "
                                 f"{env[dim]} from {where[dim]}")
            else:
                env[dim], where[dim] = size, f"input {d.name!r}"
    return env
