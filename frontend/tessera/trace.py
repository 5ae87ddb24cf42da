"""Tracing of score_mod / mask_mod: plain Python functions become attn region IR.

A modifier is called once with proxy values. Each operation on a proxy appends one
scalar arith/math op (with the user's file and line as its MLIR location), so the
region the compiler inlines on every tile is exactly what the function computed.
Python control flow on a traced value cannot be expressed and is reported with the
user's file and line.
"""
from __future__ import annotations

import numbers
import operator
import os
import traceback
from typing import Callable, Dict, List, Optional

import numpy as np

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class SpecError(ValueError):
    """A spec the compiler cannot accept; the message names the user's file and line."""


def _user_frame() -> Optional[traceback.FrameSummary]:
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return frame
    return None


def _where() -> str:
    f = _user_frame()
    return f"{f.filename}:{f.lineno}" if f else "<unknown>"


_FLOAT, _INT, _BOOL, _INDEX = "f32", "i32", "i1", "index"
_F32_MAX = 3.4028234663852886e38


def f32_literal(x: float) -> str:
    """An f32 literal MLIR parses back to float32(x), for constants and `scale =`:
    infinities and NaN (e.g. float('-inf') to mask a score) have no decimal spelling in
    MLIR and are written as bit patterns; repr's shortest round-trip form gets the
    mantissa point MLIR needs (1e-05 -> 1.0e-05, which is otherwise no float)."""
    x = float(x)
    if x != x:
        return "0x7FC00000"
    if abs(x) > _F32_MAX:  # inf, or a double that rounds to inf in f32
        return "0x7F800000" if x > 0 else "0xFF800000"
    mantissa, e, exponent = repr(x).partition("e")
    return mantissa + ("" if "." in mantissa else ".0") + e + exponent


_f32_literal = f32_literal


class _Region:
    """Collects the ops of one region."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.counter = 0
        self.buffers: Dict[str, "Buffer"] = {}

    def fresh(self) -> str:
        self.counter += 1
        return f"%t.{self.counter}"  # '.': never a table's name (a Python identifier)

    def emit(self, text: str, type_: str) -> "Value":
        name = self.fresh()
        f = _user_frame()
        loc = f' loc("{f.filename}":{f.lineno}:0)' if f else ""
        self.lines.append(f"{name} = {text}{loc}")
        return Value(self, name, type_)

    def const(self, x, type_: str) -> "Value":
        if type_ == _FLOAT:
            return self.emit(f"arith.constant {_f32_literal(float(x))} : f32", _FLOAT)
        if type_ == _BOOL:
            return self.emit(f"arith.constant {'true' if x else 'false'}", _BOOL)
        return self.emit(f"arith.constant {int(x)} : i32", _INT)


def _lift(region: _Region, x, like: "Value") -> "Value":
    if isinstance(x, Value):
        if x.region is not region:
            raise SpecError(f"{_where()}: a traced value escaped its modifier")
        return x
    if isinstance(x, (bool, np.bool_)):
        return region.const(bool(x), _BOOL)
    if isinstance(x, numbers.Integral):  # int and numpy integer scalars
        return region.const(int(x), _INT if like.type != _FLOAT else _FLOAT)
    if isinstance(x, numbers.Real):      # float and numpy float scalars
        return region.const(float(x), _FLOAT)
    raise SpecError(f"{_where()}: cannot use a {type(x).__name__} in a modifier")


def _to_float(v: "Value") -> "Value":
    if v.type == _FLOAT:
        return v
    if v.type == _BOOL:
        v = v.region.emit(f"arith.extui {v.name} : i1 to i32", _INT)
    return v.region.emit(f"arith.sitofp {v.name} : i32 to f32", _FLOAT)


_I32_FLOOR, _I32_CEIL = -2147483648.0, 2147483520.0  # the f32 values nearest i32's ends


def _to_int(v: "Value") -> "Value":
    """i32 of a traced value: a float truncates toward zero (torch's .long()), saturating
    at i32's ends, NaN giving 0, so that no input reaches fptosi's undefined cases."""
    if v.type == _INT:
        return v
    if v.type == _BOOL:
        return v.region.emit(f"arith.extui {v.name} : i1 to i32", _INT)
    r = v.region
    clamped = minimum(maximum(v, _I32_FLOOR), _I32_CEIL)
    nan = r.emit(f"arith.cmpf uno, {v.name}, {v.name} : f32", _BOOL)
    finite = where(nan, 0.0, clamped)
    return r.emit(f"arith.fptosi {finite.name} : f32 to i32", _INT)


def _unify(a: "Value", b: "Value"):
    if a.type == _FLOAT or b.type == _FLOAT:
        return _to_float(a), _to_float(b)
    if a.type != b.type:
        raise SpecError(f"{_where()}: cannot combine {a.type} and {b.type}")
    return a, b


class Value:
    """A traced scalar: f32 (scores), i32 (indices) or i1 (mask bits)."""

    def __init__(self, region: _Region, name: str, type_: str) -> None:
        self.region, self.name, self.type = region, name, type_

    # Arithmetic -----------------------------------------------------------------
    def _binary(self, other, float_op: str, int_op: Optional[str], reverse=False):
        a, b = self, _lift(self.region, other, self)
        if reverse:
            a, b = b, a
        a, b = _unify(a, b)
        if a.type == _FLOAT:
            return self.region.emit(f"{float_op} {a.name}, {b.name} : f32", _FLOAT)
        if int_op is None or a.type == _BOOL:
            raise SpecError(f"{_where()}: this operation needs numbers, got {a.type}")
        return self.region.emit(f"{int_op} {a.name}, {b.name} : i32", _INT)

    def __add__(self, o): return self._binary(o, "arith.addf", "arith.addi")
    def __radd__(self, o): return self._binary(o, "arith.addf", "arith.addi", True)
    def __sub__(self, o): return self._binary(o, "arith.subf", "arith.subi")
    def __rsub__(self, o): return self._binary(o, "arith.subf", "arith.subi", True)
    def __mul__(self, o): return self._binary(o, "arith.mulf", "arith.muli")
    def __rmul__(self, o): return self._binary(o, "arith.mulf", "arith.muli", True)
    # '//' and '%' follow Python (and numpy): the quotient is floored and the remainder
    # takes the divisor's sign, for floats as for ints. An integer divisor of 0 cannot
    # raise as in Python, and must not trap (x86's idiv faults): x // 0 = 0 and x % 0 = x,
    # so x == (x // y) * y + x % y still holds; INT32_MIN // -1 wraps to INT32_MIN as '*'
    # wraps. Floats follow IEEE (x // 0.0 = +-inf or NaN, x % 0.0 = NaN). (docs/MODIFIERS.md)
    def _divide(self, o, reverse, float_op: str, int_op: str):
        """(dividend, divisor, result of the op, (divisor == 0, divisor == -1) or None):
        integer ops divide by 1 in place of 0 and -1, which the callers patch."""
        a, b = self, _lift(self.region, o, self)
        if reverse:
            a, b = b, a
        a, b = _unify(a, b)
        constant = None if reverse or isinstance(o, (bool, Value)) else o
        if a.type != _INT or (isinstance(constant, numbers.Integral) and int(constant) not in (0, -1)):
            return a, b, a._binary(b, float_op, int_op), None
        zero, minus_one = b == 0, b == -1
        return a, b, a._binary(where(zero | minus_one, 1, b), float_op, int_op), (zero, minus_one)

    def _floordiv(self, o, reverse=False):
        a, _, q, guards = self._divide(o, reverse, "arith.divf", "arith.floordivsi")
        if q.type == _FLOAT:
            return self.region.emit(f"math.floor {q.name} : f32", _FLOAT)
        if guards:
            q = where(guards[0], 0, where(guards[1], 0 - a, q))
        return q

    def _mod(self, o, reverse=False):
        a, b, r, guards = self._divide(o, reverse, "arith.remf", "arith.remsi")
        fix = (r != 0) & ((r < 0) ^ (b < 0))  # remsi / remf truncate: sign of the dividend
        r = where(fix, r + b, r)
        return where(guards[0], a, r) if guards else r

    def _pow(self, o, reverse=False):
        if (self.type == _INT and not reverse and isinstance(o, numbers.Integral)
                and not isinstance(o, bool) and 1 <= int(o) <= 8):
            result = self  # int ** small positive int stays an exact int, as in Python
            for _ in range(int(o) - 1):
                result = result * self
            return result
        a, b = self, _lift(self.region, o, self)
        if reverse:
            a, b = b, a
        if a.type == _BOOL or b.type == _BOOL:
            raise SpecError(f"{_where()}: '**' needs numbers, got {a.type} and {b.type}")
        a, b = _to_float(a), _to_float(b)
        return self.region.emit(f"math.powf {a.name}, {b.name} : f32", _FLOAT)

    def __pow__(self, o): return self._pow(o)
    def __rpow__(self, o): return self._pow(o, True)
    def __floordiv__(self, o): return self._floordiv(o)
    def __rfloordiv__(self, o): return self._floordiv(o, True)
    def __mod__(self, o): return self._mod(o)
    def __rmod__(self, o): return self._mod(o, True)

    def __truediv__(self, o):
        a, b = _to_float(self), _to_float(_lift(self.region, o, self))
        return self.region.emit(f"arith.divf {a.name}, {b.name} : f32", _FLOAT)

    def __rtruediv__(self, o):
        a, b = _to_float(_lift(self.region, o, self)), _to_float(self)
        return self.region.emit(f"arith.divf {a.name}, {b.name} : f32", _FLOAT)

    def __neg__(self):
        if self.type == _FLOAT:
            return self.region.emit(f"arith.negf {self.name} : f32", _FLOAT)
        return 0 - self

    def __abs__(self):
        if self.type == _FLOAT:
            return self.region.emit(f"math.absf {self.name} : f32", _FLOAT)
        return self.region.emit(f"math.absi {self.name} : i32", _INT)

    # Comparisons ------------------------------------------------------------------
    def _compare(self, other, fpred: str, ipred: str):
        a, b = _unify(self, _lift(self.region, other, self))
        if a.type == _FLOAT:
            return self.region.emit(f"arith.cmpf {fpred}, {a.name}, {b.name} : f32", _BOOL)
        t = "i1" if a.type == _BOOL else "i32"
        return self.region.emit(f"arith.cmpi {ipred}, {a.name}, {b.name} : {t}", _BOOL)

    def __lt__(self, o): return self._compare(o, "olt", "slt")
    def __le__(self, o): return self._compare(o, "ole", "sle")
    def __gt__(self, o): return self._compare(o, "ogt", "sgt")
    def __ge__(self, o): return self._compare(o, "oge", "sge")
    def __eq__(self, o): return self._compare(o, "oeq", "eq")  # type: ignore[override]
    def __ne__(self, o): return self._compare(o, "une", "ne")  # type: ignore[override]
    __hash__ = None  # type: ignore[assignment]

    # Logic on mask bits, bit operations on integers (Morton codes) ---------------------
    def _logic(self, other, op: str, reverse=False):
        a, b = self, _lift(self.region, other, self)
        if reverse:
            a, b = b, a
        if a.type != b.type or a.type == _FLOAT:
            raise SpecError(f"{_where()}: '&', '|' and '^' combine two comparisons (bools) or "
                            f"two integers; got {a.type} and {b.type}")
        return self.region.emit(f"{op} {a.name}, {b.name} : {a.type}", a.type)

    def __and__(self, o): return self._logic(o, "arith.andi")
    def __rand__(self, o): return self._logic(o, "arith.andi", True)
    def __or__(self, o): return self._logic(o, "arith.ori")
    def __ror__(self, o): return self._logic(o, "arith.ori", True)
    def __xor__(self, o): return self._logic(o, "arith.xori")
    def __rxor__(self, o): return self._logic(o, "arith.xori", True)

    def __invert__(self):
        if self.type == _INT:
            return self._logic(-1, "arith.xori")
        if self.type != _BOOL:
            raise SpecError(f"{_where()}: '~' negates a comparison (bool) or an integer's "
                            f"bits, got {self.type}")
        return self._logic(True, "arith.xori")

    # Shifts of i32 indices. Counts are clamped into [0, 31] (a negative count shifts by
    # 0); '<<' by 32 or more gives 0 (the product x * 2**n wrapped to 32 bits, as '*'
    # wraps), '>>' by 31 or more gives 0 or -1 (Python's floor of x / 2**n). Shifts never
    # reach LLVM's undefined counts.
    def _shift(self, o, left: bool, reverse=False):
        a, n = self, _lift(self.region, o, self)
        if reverse:
            a, n = n, a
        if a.type != _INT or n.type != _INT:
            raise SpecError(f"{_where()}: '<<' and '>>' shift integers, got {a.type} and {n.type}")
        op = "arith.shli" if left else "arith.shrsi"
        if not reverse and isinstance(o, numbers.Integral) and 0 <= int(o) <= 31:
            return self.region.emit(f"{op} {a.name}, {n.name} : i32", _INT)
        count = maximum(n, 0)
        shifted = self.region.emit(f"{op} {a.name}, {minimum(count, 31).name} : i32", _INT)
        return where(count > 31, 0, shifted) if left else shifted

    def __lshift__(self, o): return self._shift(o, True)
    def __rlshift__(self, o): return self._shift(o, True, True)
    def __rshift__(self, o): return self._shift(o, False)
    def __rrshift__(self, o): return self._shift(o, False, True)

    # Methods torch users call on tensors ------------------------------------------------
    def abs(self): return abs(self)
    def exp(self): return exp(self)
    def exp2(self): return exp2(self)
    def log(self): return log(self)
    def log2(self): return log2(self)
    def sqrt(self): return sqrt(self)
    def tanh(self): return tanh(self)
    def floor(self): return floor(self)
    def clamp(self, min=None, max=None): return clamp(self, min, max)  # noqa: A002
    clip = clamp
    def maximum(self, other): return maximum(self, other)
    def minimum(self, other): return minimum(self, other)
    def where(self, condition, other): return where(condition, self, other)  # torch's order
    def float(self): return _to_float(self)
    def int(self): return _to_int(self)
    long = int
    def bool(self): return self if self.type == _BOOL else self != 0

    def to(self, dtype):
        """`x.to(torch.float32)`, `x.to(torch.long)`, `x.to(torch.bool)` (any float, int or
        bool dtype, torch's or numpy's, or its name): the traced value in that kind."""
        name = str(getattr(dtype, "__name__", dtype)).lower()
        if "bool" in name:
            return self.bool()
        if any(k in name for k in ("float", "half", "double")):
            return self.float()
        if "int" in name or "long" in name:
            return self.int()
        raise SpecError(f"{_where()}: cannot convert a traced value to {dtype!r}; use a "
                        f"float, int or bool dtype")

    # What cannot be traced ------------------------------------------------------------
    def __bool__(self):
        raise SpecError(
            f"{_where()}: Python control flow ('if', 'and', 'or', 'not', min/max) on a "
            f"traced value cannot be compiled; use tessera.where, tessera.minimum, "
            f"tessera.maximum, '&', '|' or '~'")

    def _no_conversion(self, *_):
        raise SpecError(f"{_where()}: a traced value has no Python number; use tessera's "
                        f"math functions (tessera.exp, tessera.tanh, ...)")

    __float__ = __int__ = __index__ = __round__ = _no_conversion

    # numpy: a numpy scalar on the left of an operator (np.float32(2) * score) is the
    # Python operator; numpy's math functions (np.exp(score)) are reported.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        op = _UFUNC_OPERATORS.get(ufunc.__name__)
        if method == "__call__" and not kwargs and op is not None:
            return op(*(_numpy_scalar(x) for x in inputs))
        name = ufunc.__name__
        hint = (f"tessera.{name}" if name in ("exp", "exp2", "log", "log2", "tanh", "sqrt", "floor",
                                             "minimum", "maximum")
                else "tessera.exp, tessera.where, ...")
        raise SpecError(f"{_where()}: numpy's {name} cannot take a traced value; use {hint}")

    def __iter__(self):
        raise SpecError(f"{_where()}: a traced value is a scalar and cannot be iterated")


def _numpy_scalar(x):
    if isinstance(x, (np.generic, np.ndarray)):
        if np.ndim(x) != 0:
            raise SpecError(f"{_where()}: cannot use a numpy array of shape {np.shape(x)} "
                            f"in a modifier (it computes one scalar per score)")
        return x.item()
    return x


_UFUNC_OPERATORS = {
    "add": operator.add, "subtract": operator.sub, "multiply": operator.mul,
    "true_divide": operator.truediv, "floor_divide": operator.floordiv,
    "remainder": operator.mod, "negative": operator.neg, "absolute": operator.abs,
    "less": operator.lt, "less_equal": operator.le, "greater": operator.gt,
    "greater_equal": operator.ge, "equal": operator.eq, "not_equal": operator.ne,
    "bitwise_and": operator.and_, "bitwise_or": operator.or_, "bitwise_xor": operator.xor,
    "invert": operator.invert, "left_shift": operator.lshift, "right_shift": operator.rshift,
}


_TABLE_TYPES = {"int32": _INT, "float32": _FLOAT}


class Buffer:
    """A table a modifier may index with traced indices (document ids, per-head ALiBi
    slopes, a learned bias[h, q_idx - kv_idx + N - 1]), passed at call time under
    `name`: int32 or float32, of any rank. An index outside the table reads 0."""

    def __init__(self, name: str, dtype: str = "int32", rank: int = 1) -> None:
        if not name.isidentifier():
            raise SpecError(f"buffer name {name!r} must be a Python identifier")
        if dtype not in _TABLE_TYPES:
            raise SpecError(f"buffer {name!r}: tables are int32 or float32, got {dtype}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= 4:
            raise SpecError(f"buffer {name!r}: rank must be an int in [1, 4], got {rank!r}")
        self.name, self.dtype, self.rank = name, dtype, rank
        self._region: Optional[_Region] = None

    @property
    def mlir_type(self) -> str:
        return f"tensor<{'?x' * self.rank}{_TABLE_TYPES[self.dtype]}>"

    def describe(self) -> str:
        return f"a {self.rank}-D {self.dtype}"

    def same_as(self, other: "Buffer") -> bool:
        return (self.name, self.dtype, self.rank) == (other.name, other.dtype, other.rank)

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        region = next((i.region for i in index if isinstance(i, Value)), None)
        if region is None or len(index) != self.rank:
            raise SpecError(f"{_where()}: buffer {self.name!r} is indexed by a traced index "
                            f"(b, h, q_idx, kv_idx or arithmetic on them); {self.rank}-D, it "
                            f"takes {self.rank} indices, got {len(index)}")
        names = []
        for i in index:
            if isinstance(i, bool) or not isinstance(i, (Value, numbers.Integral)) or (
                    isinstance(i, Value) and i.type != _INT):
                raise SpecError(f"{_where()}: buffer {self.name!r} takes integer indices, "
                                f"got {getattr(i, 'type', type(i).__name__)}")
            i = _lift(region, i, Value(region, "", _INT))
            names.append(region.emit(f"arith.index_cast {i.name} : i32 to index", _INDEX).name)
        known = region.buffers.setdefault(self.name, self)
        if not known.same_as(self):
            raise SpecError(f"{_where()}: two buffers named {self.name!r} differ "
                            f"({known.describe()} and {self.describe()} table)")
        return region.emit(f"tensor.extract %{self.name}[{', '.join(names)}] : "
                           f"{self.mlir_type}", _TABLE_TYPES[self.dtype])


def _unary(op: str):
    def f(x):
        if not isinstance(x, Value):
            raise SpecError(f"{_where()}: tessera.{op.split('.')[1]} takes a traced value")
        x = _to_float(x)
        return x.region.emit(f"{op} {x.name} : f32", _FLOAT)
    f.__name__ = op.split(".")[1]
    return f


exp, exp2, log, log2, tanh, sqrt, floor = (
    _unary(f"math.{n}") for n in ("exp", "exp2", "log", "log2", "tanh", "sqrt", "floor"))


def clamp(x, min=None, max=None):  # noqa: A002 (torch's keyword names)
    """torch.clamp: `x` limited to [min, max] (either may be None); a NaN stays NaN."""
    if not isinstance(x, Value):
        raise SpecError(f"{_where()}: tessera.clamp takes a traced value")
    if min is None and max is None:
        raise SpecError(f"{_where()}: clamp needs min or max")
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


def where(cond, a, b):
    """Element-wise select: `a` where `cond` holds, else `b`."""
    if not isinstance(cond, Value) or cond.type != _BOOL:
        raise SpecError(f"{_where()}: tessera.where needs a comparison as its condition")
    a = _lift(cond.region, a, cond if not isinstance(b, Value) else b)
    b = _lift(cond.region, b, a)
    a, b = _unify(a, b)
    return cond.region.emit(
        f"arith.select {cond.name}, {a.name}, {b.name} : {a.type}", a.type)


def minimum(a, b):
    v = a if isinstance(a, Value) else b
    a, b = _unify(_lift(v.region, a, v), _lift(v.region, b, v))
    op = "arith.minimumf" if a.type == _FLOAT else "arith.minsi"
    return v.region.emit(f"{op} {a.name}, {b.name} : {a.type}", a.type)


def maximum(a, b):
    v = a if isinstance(a, Value) else b
    a, b = _unify(_lift(v.region, a, v), _lift(v.region, b, v))
    op = "arith.maximumf" if a.type == _FLOAT else "arith.maxsi"
    return v.region.emit(f"{op} {a.name}, {b.name} : {a.type}", a.type)


def _def_site(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(fn)


def trace_region(fn: Callable, kind: str):
    """Traces `fn` into region text. Returns (text, buffers it reads)."""
    region = _Region()
    if kind == "score_mod":
        names = ["%score", "%b", "%h", "%q_idx", "%kv_idx"]
        types = [_FLOAT, _INT, _INT, _INT, _INT]
        result_type = _FLOAT
    else:
        names = ["%b", "%h", "%q_idx", "%kv_idx"]
        types = [_INT] * 4
        result_type = _BOOL
    args = [Value(region, n, t) for n, t in zip(names, types)]
    if not callable(fn):
        raise SpecError(f"{kind} must be a function, got {type(fn).__name__}")
    result = fn(*args)
    if result_type == _FLOAT:
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            result = region.const(result, _FLOAT)
        if not isinstance(result, Value) or result.type == _BOOL:
            raise SpecError(f"{_def_site(fn)}: score_mod must return a number (the new "
                            f"score), got {type(result).__name__}")
        result = _to_float(result)
    else:
        if isinstance(result, bool):
            result = region.const(result, _BOOL)
        if not isinstance(result, Value) or result.type != _BOOL:
            got = result.type if isinstance(result, Value) else type(result).__name__
            raise SpecError(f"{_def_site(fn)}: mask_mod must return a bool (a comparison "
                            f"such as q_idx >= kv_idx), got {got}")
    header = "^bb0(" + ", ".join(f"{n}: {t}" for n, t in zip(names, types)) + "):"
    body = [header] + ["  " + line for line in region.lines]
    body.append(f"  attn.yield {result.name} : {result.type}")
    return "\n".join(body), dict(region.buffers)
