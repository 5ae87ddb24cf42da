"""Spec fuzzing: random score_mod / mask_mod expression trees over (s, b, h, q_idx, kv_idx),
random tuning configs, random shapes and random table sizes, compiled for the CPU and
compared with a float64 evaluation of the same trees (tessera.reference).

One tree is evaluated twice by the same walk: once on traced values (the spec) and once
on numpy arrays with the semantics docs/MODIFIERS.md defines (floor division, x // 0 = 0,
x % 0 = x, a read outside a table = 0). Integer trees whose values could leave i32 are
redrawn, so both sides compute the same integers. Scores stay finite (s + 2 tanh(x / 20)),
so fp32 and float64 agree to SEMANTICS' 1e-5 wherever the integers agree.

    python3 test/fuzz/spec_fuzz.py --seed 1 --count 40
"""
from __future__ import annotations

import argparse
import math
import operator
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "frontend"))
import tessera  # noqa: E402
from tessera.reference import attention as exact, relative_error  # noqa: E402

TOL = 1e-5
I32 = 2 ** 31
TABLES = [tessera.Buffer("t0"), tessera.Buffer("t1")]


class Overflow(Exception):
    """An integer left i32 on the numpy side: the tree is redrawn."""


# ------------------------------------------------------------------------ the trees
# A node is a tuple (kind, ...). Int: ("var", name) ("const", c) ("bin", op, a, b)
# ("neg", a) ("abs", a) ("min"|"max", a, b) ("where", cond, a, b) ("shift", op, a, n)
# ("clamp", a, lo, hi) ("table", t, a). Bool: ("cmp", op, a, b) ("logic", op, p, q)
# ("not", p). Float: ("float", a) ("score",) ("fbin", op, x, y) ("tanh", x) ("exp", x)
# ("fwhere", cond, x, y) ("fmax", x, y).

INT_OPS = ["+", "-", "*", "//", "%", "&", "|", "^"]
CMP_OPS = ["<", "<=", ">", ">=", "==", "!="]


def gen_int(rng, depth, tables):
    if depth <= 0 or rng.random() < 0.25:
        if rng.random() < 0.7:
            return ("var", rng.choice(["b", "h", "i", "i", "j", "j"]))
        return ("const", rng.randint(-8, 8))
    r = rng.random()
    if r < 0.45:
        a, b = gen_int(rng, depth - 1, tables), gen_int(rng, depth - 1, tables)
        if a[0] == b[0] == "const":
            a = ("var", "i")
        return ("bin", rng.choice(INT_OPS), a, b)
    if r < 0.52:
        return (rng.choice(["neg", "abs"]), gen_int(rng, depth - 1, tables))
    if r < 0.60:
        return (rng.choice(["min", "max"]), gen_int(rng, depth - 1, tables),
                gen_int(rng, depth - 1, tables))
    if r < 0.70:
        return ("where", gen_bool(rng, depth - 1, tables), gen_int(rng, depth - 1, tables),
                gen_int(rng, depth - 1, tables))
    if r < 0.78:
        return ("shift", rng.choice(["<<", ">>"]), gen_int(rng, depth - 1, tables),
                rng.randint(0, 4))
    if r < 0.85:
        lo = rng.randint(-5, 20)
        return ("clamp", gen_int(rng, depth - 1, tables), lo, lo + rng.randint(0, 40))
    if tables:
        return ("table", rng.choice(tables), gen_int(rng, depth - 1, tables))
    return ("var", "j")


def gen_bool(rng, depth, tables):
    r = rng.random()
    if depth <= 0 or r < 0.5:
        a = gen_int(rng, depth - 1, tables)
        if not any(n[0] == "var" for n in walk(a)):  # a traced comparison, not a Python bool
            a = ("bin", "+", ("var", "i"), a)
        return ("cmp", rng.choice(CMP_OPS), a, gen_int(rng, depth - 1, tables))
    if r < 0.85:
        return ("logic", rng.choice(["&", "|", "^"]), gen_bool(rng, depth - 1, tables),
                gen_bool(rng, depth - 1, tables))
    return ("not", gen_bool(rng, depth - 1, tables))


def gen_float(rng, depth, tables):
    r = rng.random()
    if depth <= 0 or r < 0.2:
        return ("score",) if rng.random() < 0.5 else ("float", gen_int(rng, 1, tables))
    if r < 0.45:
        return ("float", gen_int(rng, depth - 1, tables))
    if r < 0.65:
        return ("fbin", rng.choice(["+", "-", "*"]), gen_float(rng, depth - 1, tables),
                gen_float(rng, depth - 1, tables))
    if r < 0.75:
        return (rng.choice(["tanh", "exp"]), gen_float(rng, depth - 1, tables))
    if r < 0.9:
        return ("fwhere", gen_bool(rng, depth - 1, tables), gen_float(rng, depth - 1, tables),
                gen_float(rng, depth - 1, tables))
    return ("fmax", gen_float(rng, depth - 1, tables), gen_float(rng, depth - 1, tables))


# ------------------------------------------------------------ the two interpretations

class TracedOps:
    """Operators on traced values (the spec); constants fold with the same semantics."""
    tables = {}

    @staticmethod
    def binary(op, a, b):
        if op in ("//", "%") and not any(isinstance(x, tessera.trace.Value) for x in (a, b)):
            return NumpyOps.binary(op, a, b)
        return {"+": operator.add, "-": operator.sub, "*": operator.mul,
                "//": operator.floordiv, "%": operator.mod, "&": operator.and_,
                "|": operator.or_, "^": operator.xor}[op](a, b)

    minimum, maximum, where = staticmethod(tessera.minimum), staticmethod(tessera.maximum), \
        staticmethod(tessera.where)

    @staticmethod
    def tanh(x):
        return tessera.tanh(x) if isinstance(x, tessera.trace.Value) else math.tanh(x)

    @staticmethod
    def exp(x):
        return tessera.exp(x) if isinstance(x, tessera.trace.Value) else math.exp(x)

    def table(self, t, index):
        if not isinstance(index, tessera.trace.Value):
            index = index + 0 * self.env["i"]
        return t[index]

    @staticmethod
    def clamp(x, lo, hi):
        return tessera.clamp(x, lo, hi) if isinstance(x, tessera.trace.Value) else min(max(x, lo), hi)

    @staticmethod
    def to_float(x):
        return x.float() if isinstance(x, tessera.trace.Value) else float(x)


class NumpyOps:
    """The same operators in int64 / float64 with the defined semantics."""

    @staticmethod
    def check(v):
        if np.any(np.abs(np.asarray(v, np.int64)) >= I32):
            raise Overflow()
        return v

    @staticmethod
    def binary(op, a, b):
        a, b = np.int64(a) if np.isscalar(a) else a, np.int64(b) if np.isscalar(b) else b
        if op == "//":
            return np.where(b == 0, 0, a // np.where(b == 0, 1, b))
        if op == "%":
            return np.where(b == 0, a, a % np.where(b == 0, 1, b))
        return NumpyOps.check({"+": np.add, "-": np.subtract, "*": np.multiply,
                               "&": np.bitwise_and, "|": np.bitwise_or,
                               "^": np.bitwise_xor}[op](a, b))

    minimum, maximum, where = staticmethod(np.minimum), staticmethod(np.maximum), \
        staticmethod(np.where)
    tanh, exp = staticmethod(np.tanh), staticmethod(np.exp)

    def table(self, t, index):
        values = self.tables[t.name]
        index = np.asarray(index)
        inside = (index >= 0) & (index < len(values))
        return np.where(inside, values[np.clip(index, 0, len(values) - 1)], 0)

    @staticmethod
    def clamp(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def to_float(x):
        return np.asarray(x, np.float64)


def evaluate(node, ops, env):
    kind = node[0]
    ev = lambda n: evaluate(n, ops, env)  # noqa: E731
    if kind == "var":
        return env[node[1]]
    if kind == "const":
        return node[1]
    if kind == "bin":
        return ops.binary(node[1], ev(node[2]), ev(node[3]))
    if kind == "neg":
        return ops.binary("-", 0, ev(node[1]))
    if kind == "abs":
        return abs(ev(node[1]))
    if kind in ("min", "max", "fmax"):
        kind = "max" if kind == "fmax" else kind
        a, b = ev(node[1]), ev(node[2])
        if not any(isinstance(x, tessera.trace.Value) for x in (a, b)) and ops is not NUMPY:
            return min(a, b) if kind == "min" else max(a, b)
        return (ops.minimum if kind == "min" else ops.maximum)(a, b)
    if kind == "where":
        return ops.where(ev(node[1]), ev(node[2]), ev(node[3]))
    if kind == "shift":
        a = ev(node[2])
        value = a << node[3] if node[1] == "<<" else a >> node[3]
        return NUMPY.check(value) if ops is NUMPY else value
    if kind == "clamp":
        return ops.clamp(ev(node[1]), node[2], node[3])
    if kind == "table":
        return ops.table(node[1], ev(node[2]))
    if kind == "cmp":
        return {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
                "==": operator.eq, "!=": operator.ne}[node[1]](ev(node[2]), ev(node[3]))
    if kind == "logic":
        return {"&": operator.and_, "|": operator.or_, "^": operator.xor}[node[1]](
            ev(node[2]), ev(node[3]))
    if kind == "not":
        return ~ev(node[1])
    if kind == "float":
        return ops.to_float(ev(node[1]))
    if kind == "score":
        return env["s"]
    if kind == "fbin":  # a product's second factor squashed: no overflow to inf - inf
        x, y = ev(node[2]), ev(node[3])
        return x + y if node[1] == "+" else x - y if node[1] == "-" else x * ops.tanh(y)
    if kind in ("tanh", "exp"):
        x = ops.tanh(ev(node[1]))
        return x if kind == "tanh" else ops.exp(x)
    if kind == "fwhere":
        return ops.where(ev(node[1]), ev(node[2]), ev(node[3]))
    raise AssertionError(kind)


NUMPY = NumpyOps()
TRACED = TracedOps()


def modifiers(score_tree, mask_tree, ops):
    """(score_mod, mask_mod) functions walking the trees with `ops`."""
    def leaf(x):  # numpy: b and h arrive as Python ints, whose '~' is not a logical not
        return np.int64(x) if ops is NUMPY and isinstance(x, int) else x

    def score_mod(s, b, h, i, j):
        env = dict(s=s, b=leaf(b), h=leaf(h), i=i, j=j)
        ops.env = env
        return env["s"] + 2.0 * ops.tanh(evaluate(score_tree, ops, env) * 0.05)

    def mask_mod(b, h, i, j):
        env = dict(b=leaf(b), h=leaf(h), i=i, j=j)
        ops.env = env
        return evaluate(mask_tree, ops, env)

    return (score_mod if score_tree else None), (mask_mod if mask_tree else None)


# ----------------------------------------------------------------------------- a case

def draw_case(seed: int, index: int):
    """A reproducible case: trees, shapes, config and tables. Trees whose integers
    could leave i32 on the largest shapes are redrawn."""
    rng = random.Random(f"spec:{seed}:{index}")
    tables = rng.sample(TABLES, rng.randint(0, 2))
    while True:
        score = gen_float(rng, rng.randint(1, 4), tables) if rng.random() < 0.8 else None
        mask = gen_bool(rng, rng.randint(1, 3), tables) if rng.random() < 0.6 else None
        if score is None and mask is None:
            continue
        heads_k = rng.choice([1, 2])
        shape = dict(B=rng.choice([1, 2]), H=heads_k * rng.choice([1, 2]), Hk=heads_k,
                     Nq=rng.choice([1, 2, 7, 16, 33, 64, 70]),
                     Nk=rng.choice([1, 3, 16, 31, 64, 65]), D=16)
        used = sorted({n[1].name for n in walk(score) + walk(mask) if n[0] == "table"})
        sizes = {name: max(1, rng.choice([shape["Nq"], shape["Nk"], 3, 80, 200])) for name in used}
        values = {name: np.array([rng.randint(-4, 90) for _ in range(n)], np.int32)
                  for name, n in sizes.items()}
        NUMPY.tables = values
        try:  # the numpy walk over the whole index box decides whether i32 suffices
            i = np.arange(shape["Nq"])[:, None]
            j = np.arange(shape["Nk"])[None, :]
            for b in range(shape["B"]):
                for h in range(shape["H"]):
                    s_mod, m_mod = modifiers(score, mask, NUMPY)
                    if s_mod:
                        s_mod(np.zeros((shape["Nq"], shape["Nk"])), b, h, i, j)
                    if m_mod:
                        m_mod(b, h, i, j)
        except Overflow:
            continue
        config = tessera.Config(block_m=rng.choice([16, 32, 64]), block_n=rng.choice([16, 32, 64]),
                                num_warps=rng.choice([1, 2, 4]), num_stages=rng.choice([1, 2, 3]))
        causal = rng.random() < 0.3
        window = rng.choice([None, 1, 5, 40]) if causal else None
        return dict(score=score, mask=mask, shape=shape, tables=values, config=config,
                    causal=causal, window=window)


def walk(node):
    if not isinstance(node, tuple):
        return []
    return [node] + [n for child in node[1:] for n in walk(child)]


def run_case(case, seed: int):
    """'ok', 'rejected' (a table check refused the call) or raises AssertionError with
    what differs."""
    s_mod, m_mod = modifiers(case["score"], case["mask"], TRACED)
    spec = tessera.attention(score_mod=s_mod, mask_mod=m_mod, causal=case["causal"],
                             window=case["window"])
    sh = case["shape"]
    kern = tessera.compile(spec, head_dim=sh["D"], config=case["config"])
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((sh["B"], sh["H"], sh["Nq"], sh["D"])).astype(np.float32)
    k = rng.standard_normal((sh["B"], sh["Hk"], sh["Nk"], sh["D"])).astype(np.float32)
    v = rng.standard_normal((sh["B"], sh["Hk"], sh["Nk"], sh["D"])).astype(np.float32)
    out = np.full((sh["B"], sh["H"], sh["Nq"], sh["D"]), np.nan, np.float32)
    lse = np.full((sh["B"], sh["H"], sh["Nq"]), np.nan, np.float32)
    try:
        kern(q, k, v, out=out, lse_out=lse, **case["tables"])
    except ValueError as e:
        if "reads table" in str(e):
            return "rejected"
        raise
    NUMPY.tables = case["tables"]
    r_score, r_mask = modifiers(case["score"], case["mask"], NUMPY)
    want, want_lse = exact(q, k, v, score_mod=r_score, mask_mod=r_mask, causal=case["causal"],
                           window=case["window"])
    err = relative_error(out, want)
    rows = np.isfinite(want_lse)
    lse_err = relative_error(lse[rows], want_lse[rows]) if rows.any() else 0.0
    assert err <= TOL and lse_err <= TOL and np.all(out[~rows] == 0), \
        f"relative error {err:.3g} (lse {lse_err:.3g})"
    return "ok"


def describe(case) -> str:
    return (f"score_mod tree {case['score']}\n  mask_mod tree {case['mask']}\n  causal "
            f"{case['causal']} window {case['window']} shape {case['shape']} config "
            f"{case['config']} tables { {n: len(t) for n, t in case['tables'].items()} }")


def fuzz(seed: int, count: int, budget: float = float("inf"), only=None):
    """Returns (tried, counts by outcome, failures as (index, description, error))."""
    start, tried, counts, failures = time.monotonic(), 0, {"ok": 0, "rejected": 0}, []
    for index in ([only] if only is not None else range(count)):
        if time.monotonic() - start > budget:
            break
        case = draw_case(seed, index)
        tried += 1
        try:
            counts[run_case(case, seed * 100003 + index)] += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported with its case
            failures.append((index, describe(case), f"{type(e).__name__}: {e}"))
    return tried, counts, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--budget", type=float, default=float("inf"), help="seconds")
    parser.add_argument("--only", type=int, help="run this case index alone")
    args = parser.parse_args(argv)
    tried, counts, failures = fuzz(args.seed, args.count, args.budget, args.only)
    for index, text, error in failures:
        print(f"case {args.seed}:{index} failed: {error}\n  {text}\n  reproduce: python3 "
              f"test/fuzz/spec_fuzz.py --seed {args.seed} --only {index}\n")
    print(f"spec fuzz seed {args.seed}: {tried} specs tried ({counts['ok']} compared, "
          f"{counts['rejected']} refused by the table check), {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
