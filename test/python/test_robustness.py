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


# ------------------------------------------------- integer '//' and '%' by zero (SIGFPE)

def _floor_div(x, y):
    """The defined semantics in int64: Python's floor division, x // 0 = 0."""
    return np.where(y == 0, 0, x // np.where(y == 0, 1, y))


def _floor_mod(x, y):
    """Python's remainder (the divisor's sign), x % 0 = x."""
    return np.where(y == 0, x, x % np.where(y == 0, 1, y))


def _grid(shape, i, j):
    return (np.broadcast_to(i, shape).astype(np.int64), np.broadcast_to(j, shape).astype(np.int64))


def test_integer_division_by_zero_is_defined_and_floors_negatives():
    # Divisors j - 3, j - 5 and 7 - j cross zero; dividends i - 20 are negative too.
    def score_mod(s, b, h, i, j):
        return (s + 0.01 * ((i - 20) // (j - 3)) + 0.1 * ((i - 20) % (j - 5))
                + 0.05 * (i % (7 - j)) + 0.02 * ((i - 20) // -1) + 0.03 * (i % 0 + i // 0))

    def reference(s, b, h, i, j):
        i, j = _grid(s.shape, i, j)
        return (s + 0.01 * _floor_div(i - 20, j - 3) + 0.1 * _floor_mod(i - 20, j - 5)
                + 0.05 * _floor_mod(i, 7 - j) + 0.02 * -(i - 20) + 0.03 * i)

    def mask_mod(b, h, i, j):
        return (j // (i - 4)) % (i - 9) >= 0

    def mask_reference(b, h, i, j):
        i, j = _grid((i.shape[0], j.shape[1]), i, j)
        return _floor_mod(_floor_div(j, i - 4), i - 9) >= 0

    kern = tessera.compile(tessera.attention(score_mod=score_mod, mask_mod=mask_mod), head_dim=16)
    rng = np.random.default_rng(7)
    q, k, v = (randn(rng, 1, 2, 41, 16) for _ in range(3))
    want, _ = exact(q, k, v, score_mod=reference, mask_mod=mask_reference)
    assert relative_error(kern(q, k, v), want) <= TOL


def test_integer_division_by_zero_compiles_for_the_gpu(tmp_path):
    import os
    import shutil
    import subprocess
    ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
    spec = tessera.attention(score_mod=lambda s, b, h, i, j: s + (i % (j - 3)) - i // (j - 5),
                             mask_mod=lambda b, h, i, j: i // (j - 1) >= 0)
    kern = tessera.compile(spec, head_dim=64, dtype="bfloat16", target="cuda", chip="sm_90a")
    if not os.path.exists(ptxas):
        pytest.skip("ptxas not installed")
    (tmp_path / "k.ptx").write_bytes(kern.ptx if isinstance(kern.ptx, bytes) else kern.ptx.encode())
    subprocess.run([ptxas, "-arch=sm_90a", str(tmp_path / "k.ptx"), "-o", str(tmp_path / "k.cubin")],
                   check=True, capture_output=True)


# ------------------------------------------------ tables shorter than the indices read

DOC = tessera.Buffer("document_id")
BIAS = tessera.Buffer("bias", "float32", rank=2)


def _qkv(n_q, n_k, seed=3):
    rng = np.random.default_rng(seed)
    return randn(rng, 1, 2, n_q, 16), randn(rng, 1, 2, n_k, 16), randn(rng, 1, 2, n_k, 16)


def test_short_document_table_raises_and_exact_one_runs():
    kern = tessera.compile(tessera.attention(mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
                           head_dim=16)
    q, k, v = _qkv(40, 40)
    # The tail of a short table used to read 0: silently in document 0.
    with pytest.raises(ValueError, match=r"table 'document_id' at dim 0 with indices 0 .. 39.*extent is 32"):
        kern(q, k, v, document_id=np.zeros(32, np.int32))
    doc = np.repeat(np.arange(4, dtype=np.int32), 10)
    want, _ = exact(q, k, v, mask_mod=lambda b, h, i, j: doc[i] == doc[j])
    assert relative_error(kern(q, k, v, document_id=doc), want) <= TOL


def test_relative_bias_table_extent_follows_both_lengths():
    kern = tessera.compile(tessera.attention(
        score_mod=lambda s, b, h, i, j: s + BIAS[h, i - j + 63]), head_dim=16)
    bias = np.random.default_rng(1).standard_normal((2, 127)).astype(np.float32)
    q, k, v = _qkv(64, 64)
    want, _ = exact(q, k, v, score_mod=lambda s, b, h, i, j: s + bias[h, i - j + 63])
    assert relative_error(kern(q, k, v, bias=bias), want) <= TOL
    q, k, v = _qkv(64, 65)  # kv_idx = 64 reads bias[h, -1]
    with pytest.raises(ValueError, match=r"'bias' at dim 1 with indices -1 \.\. 126"):
        kern(q, k, v, bias=bias)
    q, k, v = _qkv(3, 3)  # heads read 0 .. 1 of 1
    with pytest.raises(ValueError, match=r"'bias' at dim 0 with indices 0 \.\. 1 .*extent is 1"):
        kern(q, k, v, bias=bias[:1])


def test_guarded_and_undecidable_indices():
    # Division guards keep exact bounds when the divisor cannot be 0: doc[i // (j + 1)]
    # reads 0 .. Nq - 1; an index read from a table cannot be bounded and is not checked.
    guarded = tessera.compile(tessera.attention(
        mask_mod=lambda b, h, i, j: DOC[i // (j + 1)] >= 0), head_dim=16)
    q, k, v = _qkv(20, 20)
    with pytest.raises(ValueError, match=r"indices 0 \.\. 19"):
        guarded(q, k, v, document_id=np.zeros(19, np.int32))
    guarded(q, k, v, document_id=np.zeros(20, np.int32))
    nested = tessera.compile(tessera.attention(
        mask_mod=lambda b, h, i, j: DOC[DOC[i] + 0 * j] >= 0), head_dim=16)
    with pytest.raises(ValueError, match=r"indices 0 \.\. 19"):  # the outer read's own index
        nested(q, k, v, document_id=np.zeros(5, np.int32))
    nested(q, k, v, document_id=np.zeros(20, np.int32))  # DOC[DOC[i]]: not decidable, runs


# ------------------------------------------ SSA names of tables and traced values (fuzz)

def test_table_named_like_a_traced_value_compiles():
    # Found by the spec fuzzer: a table "t1" was also the name of the first traced value.
    t1 = tessera.Buffer("t1")
    kern = tessera.compile(tessera.attention(
        score_mod=lambda s, b, h, i, j: s + 0.5 * (i + 1 == j) + 0.25 * t1[h]), head_dim=16)
    q, k, v = _qkv(9, 9)
    table = np.array([3, -2], np.int32)
    want, _ = exact(q, k, v, score_mod=lambda s, b, h, i, j: s + 0.5 * (i + 1 == j) + 0.25 * table[h])
    assert relative_error(kern(q, k, v, t1=table), want) <= TOL


@pytest.mark.parametrize("name", ["o", "lse", "b", "score", "kv_idx", "d_x"])
def test_table_names_of_kernel_operands_are_refused(name):
    table = tessera.Buffer(name)
    with pytest.raises(tessera.SpecError, match="clash with q, k, v or another name"):
        tessera.attention(mask_mod=lambda b, h, i, j: table[i] >= 0)


def test_program_input_named_like_an_intermediate():
    attn = tessera.attention()
    kern = tessera.compile(tessera.program(lambda q, k, p1: attn(q, k, p1)[0],
                                           q="B H N D", k="B H N D", p1="B H N D"), head_dim=16)
    q, k, v = _qkv(5, 5)
    assert relative_error(kern(q, k, v), exact(q, k, v)[0]) <= TOL


def test_short_table_inside_a_program_raises():
    attn = tessera.attention(mask_mod=lambda b, h, i, j: DOC[i] == DOC[j])

    def documents(q, k, v, document_id):
        return tessera.merge(*attn(q, k, v), *attn(q, k, v))[0]

    kern = tessera.compile(tessera.program(documents, q="B H N D", k="B H N D", v="B H N D",
                                           document_id=("T", "int32")), head_dim=16)
    q, k, v = _qkv(40, 40)
    with pytest.raises(ValueError, match=r"'document_id' at dim 0 with indices 0 \.\. 39.*extent is 32"):
        kern(q, k, v, np.zeros(32, np.int32))
    doc = np.repeat(np.arange(4, dtype=np.int32), 10)
    want, _ = exact(q, k, v, mask_mod=lambda b, h, i, j: doc[i] == doc[j])
    assert relative_error(kern(q, k, v, doc), want) <= TOL
