"""Which table entries a spec's modifiers can read, checked against the tables at call time.

The kernel reads 0 for an index outside a table, so a short table (a document-id list
shorter than the sequence) used to give a silently wrong answer. Before each call the
traced region is evaluated over intervals: b in [0, B), h in [0, H), q_idx in [0, Nq),
kv_idx in [0, Nk). Every index a `tensor.extract` can take over that box must lie in
its table. On the host, from shapes only: no device sync, no table contents.

An index whose bound cannot be decided (it depends on a table's contents, a float cast,
a product that may wrap, a division by a range holding 0, '|' or '^' of a negative) is
not checked; docs/MODIFIERS.md states the rule.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

_I32_MIN, _I32_MAX = -2 ** 31, 2 ** 31 - 1
_LINE = re.compile(r"^\s*(%[\w.]+) = ([\w.]+)\s*(.*?)(?:\s+loc\(.*\))?$")
_ARGS = ("%b", "%h", "%q_idx", "%kv_idx")

Interval = Optional[Tuple[int, int]]   # an i32 range, None when unknown
Bools = frozenset                        # the values an i1 may take


@lru_cache(maxsize=256)
def _parse(region: str) -> Tuple[tuple, ...]:
    """(result, op, operand names, text) per op of a region's text."""
    ops = []
    for line in region.splitlines():
        m = _LINE.match(line)
        if m:
            result, op, rest = m.groups()
            operands = rest.split(" : ")[0]
            ops.append((result, op, tuple(re.findall(r"%[\w.]+", operands)), rest))
    return tuple(ops)


def _i32(lo: int, hi: int) -> Interval:
    return (lo, hi) if _I32_MIN <= lo and hi <= _I32_MAX else None


def _corners(f, x: Tuple[int, int], y: Tuple[int, int]) -> Interval:
    values = [f(a, b) for a in x for b in y]
    return _i32(min(values), max(values))


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


_DIVISIONS = {"arith.floordivsi": lambda a, b: a // b, "arith.divsi": _trunc_div,
              "arith.ceildivsi": lambda a, b: -(-a // b)}
_COMPARE = {"slt": lambda x, y: (x[1] < y[0], x[0] >= y[1]),
            "sle": lambda x, y: (x[1] <= y[0], x[0] > y[1]),
            "sgt": lambda x, y: (x[0] > y[1], x[1] <= y[0]),
            "sge": lambda x, y: (x[0] >= y[1], x[1] < y[0]),
            "eq": lambda x, y: (x[0] == x[1] == y[0] == y[1], x[1] < y[0] or y[1] < x[0]),
            "ne": lambda x, y: (x[1] < y[0] or y[1] < x[0], x[0] == x[1] == y[0] == y[1])}


def _integer_op(op: str, x: Interval, y: Interval) -> Interval:
    """The range of a two-operand i32 op over ranges x and y (None: unknown)."""
    if op == "arith.andi":  # a non-negative mask bounds the result, whatever the other
        masks = [r[1] for r in (x, y) if r is not None and r[0] >= 0]
        return (0, min(masks)) if masks else None
    if x is None or y is None:
        return None
    if op in ("arith.addi", "arith.subi", "arith.muli", "arith.minsi", "arith.maxsi"):
        f = {"arith.addi": lambda a, b: a + b, "arith.subi": lambda a, b: a - b,
             "arith.muli": lambda a, b: a * b, "arith.minsi": min, "arith.maxsi": max}[op]
        return _corners(f, x, y)
    if op in _DIVISIONS:  # monotone in each operand while the divisor keeps its sign
        return None if y[0] <= 0 <= y[1] else _corners(_DIVISIONS[op], x, y)
    if op == "arith.remsi":  # |r| < |divisor|, |r| <= |dividend|, the dividend's sign
        if y[0] <= 0 <= y[1]:
            return None
        m = min(max(-y[0], y[1]) - 1, max(-x[0], x[1]))
        return (0 if x[0] >= 0 else -m, 0 if x[1] <= 0 else m)
    if op in ("arith.ori", "arith.xori"):
        if x[0] >= 0 and y[0] >= 0:
            return (0, (1 << max(x[1], y[1]).bit_length()) - 1)
        if op == "arith.xori" and (x == (-1, -1) or y == (-1, -1)):  # ~v = -v - 1
            v = y if x == (-1, -1) else x
            return (-v[1] - 1, -v[0] - 1)
        return None
    if op in ("arith.shli", "arith.shrsi") and 0 <= y[0] and y[1] <= 31:
        f = (lambda a, n: a << n) if op == "arith.shli" else (lambda a, n: a >> n)
        return _corners(f, x, y)
    return None


def _evaluate(region: str, box: Dict[str, Tuple[int, int]]) -> List[Tuple[str, List[Interval]]]:
    """(table name, range of each index) for every table read of `region` over `box`."""
    values: Dict[str, object] = dict(box)
    reads = []
    for result, op, operands, rest in _parse(region):
        args = [values.get(o) for o in operands]
        value: object = None
        if op == "arith.constant":
            literal = rest.split(" : ")[0].strip()
            if literal in ("true", "false"):
                value = frozenset([literal == "true"])
            elif re.fullmatch(r"-?\d+", literal) and rest.endswith(("i32", "index")):
                value = (int(literal),) * 2
        elif op == "tensor.extract":
            reads.append((operands[0][1:], args[1:]))
        elif op in ("arith.index_cast", "arith.extsi"):
            value = args[0]
        elif op == "arith.extui" and isinstance(args[0], frozenset):
            value = (min(args[0]) * 1, max(args[0]) * 1)
        elif op == "math.absi" and isinstance(args[0], tuple):
            lo, hi = args[0]
            value = _i32(0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
        elif op == "arith.cmpi" and all(isinstance(a, tuple) for a in args):
            surely, never = _COMPARE.get(rest.split(",")[0].strip(), lambda x, y: (0, 0))(*args)
            value = frozenset([True]) if surely else frozenset([False]) if never else None
        elif op == "arith.select" and len(args) == 3:
            cond, a, b = args
            if cond == frozenset([True]):
                value = a
            elif cond == frozenset([False]):
                value = b
            elif isinstance(a, tuple) and isinstance(b, tuple):
                value = (min(a[0], b[0]), max(a[1], b[1]))
            elif isinstance(a, frozenset) and isinstance(b, frozenset):
                value = a | b
        elif op in ("arith.andi", "arith.ori", "arith.xori") and all(
                isinstance(a, frozenset) for a in args):
            f = {"arith.andi": lambda p, q: p and q, "arith.ori": lambda p, q: p or q,
                 "arith.xori": lambda p, q: p != q}[op]
            value = frozenset(f(p, q) for p in args[0] for q in args[1])
        elif len(args) == 2 and not any(isinstance(a, frozenset) for a in args):
            value = _integer_op(op, *args)
        if value is not None:
            values[result] = value
    return reads


def check_table_extents(spec, batch: int, heads: int, n_q: int, n_k: int,
                        shapes: Dict[str, Sequence[int]]) -> None:
    """Raises ValueError when a table of `shapes` is shorter (or an index lower) than an
    index the spec's modifiers can read for inputs of these sizes."""
    if min(batch, heads, n_q, n_k) < 1:
        return
    box = dict(zip(_ARGS, ((0, batch - 1), (0, heads - 1), (0, n_q - 1), (0, n_k - 1))))
    for kind, region in (("score_mod", spec._regions[0]), ("mask_mod", spec._regions[1])):
        if not region:
            continue
        for name, ranges in _evaluate(region, box):
            shape = shapes.get(name)
            for dim, (bound, extent) in enumerate(zip(ranges, shape or ())):
                if isinstance(bound, tuple) and (bound[0] < 0 or bound[1] >= extent):
                    raise ValueError(
                        f"{kind} reads table {name!r} at dim {dim} with indices "
                        f"{bound[0]} .. {bound[1]} for B={batch}, H={heads}, Nq={n_q}, "
                        f"Nk={n_k}, but its extent is {extent}: an index outside a table "
                        f"would read 0. Make the table cover every index the modifier can "
                        f"take (docs/MODIFIERS.md)")
