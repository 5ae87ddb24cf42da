"""Issue 31: inputs that used to crash, hang or answer wrong silently now give a right
answer or a clear error (each test failed before its fix)."""
import numpy as np
import pytest

import tessera
from tessera import reference_sparse as ref
from tessera.reference import attention as exact, relative_error

TOL = 1e-5


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


# --------------------------------------------------------------------- GPU target chips

@pytest.mark.parametrize("chip", ["sm_70", "sm_75", "gfx90a", "SM_90A", "", "sm_90a}"])
def test_unsupported_chip_is_an_exception_not_a_crash(chip):
    spec = tessera.attention(causal=True)
    with pytest.raises(RuntimeError, match="unsupported GPU chip"):
        tessera.compile(spec, head_dim=64, dtype="bfloat16", target="cuda", chip=chip)


# ------------------------------------------- program intermediates sized by op semantics

# Dv != D, Nq != Nk and grouped heads at once: o is [B, H, Nq, Dv], not v's [B, G, Nk, Dv].
SHAPES = dict(q="B H M D", k="B G N D", v="B G N Dv")


def _inputs(rng, m, n, b=2, h=4, g=2, d=32, dv=16):
    return randn(rng, b, h, m, d), randn(rng, b, g, n, d), randn(rng, b, g, n, dv)


def _program(fn, **extra):
    return tessera.compile(tessera.program(fn, **SHAPES, **extra), head_dim=32, value_dim=16)


@pytest.mark.parametrize("m,n", [(1, 9), (37, 5), (70, 130)])
def test_attention_result_feeding_gate_and_merge(m, n):
    attn = tessera.attention()
    causal = tessera.attention(causal=True)

    def two_branches(q, k, v, g):
        o1, l1 = attn(q, k, v)
        o2, l2 = causal(q, k, v)
        mixed = tessera.gate(g, o1, o2)
        merged, lse = tessera.merge(o1, l1, o2, l2)
        return mixed, merged, lse

    kern = _program(two_branches, g=("B H M 2", "float32"))
    rng = np.random.default_rng(m * 1000 + n)
    q, k, v = _inputs(rng, m, n)
    g = rng.random((2, 4, m, 2), dtype=np.float32)
    o1, l1 = exact(q, k, v)
    o2, l2 = exact(q, k, v, causal=True)
    mixed, merged, lse = kern(q, k, v, g)
    assert mixed.shape == merged.shape == (2, 4, m, 16) and lse.shape == (2, 4, m)
    assert relative_error(mixed, ref.gate(g, o1, o2)) <= TOL
    want_o, want_l = ref.merge(o1, l1, o2, l2)
    assert relative_error(merged, want_o) <= TOL
    finite = np.isfinite(want_l)
    assert relative_error(lse[finite], want_l[finite]) <= TOL


@pytest.mark.parametrize("m,n", [(1, 9), (70, 130)])
def test_attention_result_feeding_row_ops_and_compress(m, n):
    attn = tessera.attention()

    def rows(q, k, v, idx):
        o, lse = attn(q, k, v)
        picked = tessera.gather_rows(o, idx)
        back = tessera.scatter_rows(picked, idx)
        return tessera.compress(back, block=2), tessera.gather_rows(lse, idx)

    kern = _program(rows, idx=("M", "int32"))
    rng = np.random.default_rng(m + n)
    q, k, v = _inputs(rng, m, n)
    idx = rng.permutation(m).astype(np.int32)
    o, lse = exact(q, k, v)
    pooled, picked_lse = kern(q, k, v, idx)
    assert relative_error(pooled, ref.compress(o, 2, 2)) <= TOL
    assert relative_error(picked_lse, ref.gather_rows(lse, idx)) <= TOL


# ----------------------------------------------------- floats whose repr has no point

@pytest.mark.parametrize("c", [1e-05, 1e+16, -1e+30, 2.5e-08])
def test_float_constants_in_exponent_form(c):
    # repr(1e-05) == '1e-05' is no MLIR float: modifiers and scale= failed to parse.
    def score_mod(s, b, h, i, j):
        return s + c * (i - j)

    spec = tessera.attention(scale=1e-05 if abs(c) < 1 else None, score_mod=score_mod)
    kern = tessera.compile(spec, head_dim=16)
    rng = np.random.default_rng(5)
    q, k, v = (randn(rng, 1, 2, 21, 16) for _ in range(3))
    want, _ = exact(q, k, v, scale=spec.scale, score_mod=score_mod)
    assert relative_error(kern(q, k, v), want) <= TOL


def test_program_and_linear_scales_in_exponent_form():
    def select(q, k):
        return tessera.block_topk(q, tessera.compress(k, block=4), block_q=4, block_k=4, k=2,
                                  score="softmax", scale=1e-05)
    tessera.compile(tessera.program(select, q="B H N D", k="B H N D"), head_dim=16)
    tessera.compile(tessera.linear_attention(causal=True, scale=1e-05), head_dim=16)
