"""Softmax attention backward on the CPU (issue 24): dQ, dK, dV of the generated gradient
kernel against a float64 backward written from the math (reference_grad), itself checked
by finite differences of the float64 forward. fp32 tolerance 1e-5 (SEMANTICS.md)."""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tessera as ts
from tessera import reference as ref
from tessera.reference_grad import attention_grad as ref_grad

TOL = 1e-5
rng = np.random.default_rng(24)


def _randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# Modifiers, each as the spec's traced function, its numpy twin and the numpy derivative
# of the twin with respect to the score (written by hand).
def _alibi(s, b, h, i, j):
    return s - 0.25 * (h + 1) * abs(i - j)


def _softcap(s, b, h, i, j):
    return 8.0 * ts.tanh(s / 8.0)


def _softcap_np(s, b, h, i, j):
    return 8.0 * np.tanh(s / 8.0)


def _softcap_slope(s, b, h, i, j):
    return 1.0 - np.tanh(s / 8.0) ** 2


def _one(s, b, h, i, j):
    return np.ones_like(s)


DOCS = ts.Buffer("doc")


def _document(b, h, i, j):
    return DOCS[i] == DOCS[j]


def _prefix_lm(b, h, i, j):
    return (j <= i) | (j < 5)


def _late_rows(b, h, i, j):  # rows 0..2 keep no key at all
    return (j <= i) & (i >= 3)


BIAS = ts.Buffer("bias", dtype="float32", rank=2)
SLOPES = ts.Buffer("slopes", dtype="float32")


# name, spec kwargs, (B, H, Hk, Nq, Nk, D), numpy score_mod, slope, extra call buffers
CASES = [
    ("full", {}, (1, 2, 2, 17, 17, 64), None, None),
    ("nq1_d256", {}, (1, 2, 1, 1, 17, 256), None, None),  # Nk = 1 has dq = dk = 0 exactly
    ("causal_nq_lt_nk_gqa2", {"causal": True}, (1, 4, 2, 100, 130, 96), None, None),
    ("causal_nq_gt_nk_gqa4", {"causal": True}, (1, 4, 1, 130, 100, 128), None, None),
    ("window", {"causal": True, "window": 37}, (2, 2, 2, 128, 128, 64), None, None),
    ("bidirectional_window", {"window": 20}, (1, 2, 2, 100, 150, 64), None, None),
    ("alibi", {"score_mod": _alibi, "causal": True}, (1, 2, 2, 128, 128, 64), _alibi, _one),
    ("softcap", {"score_mod": _softcap}, (1, 2, 1, 77, 77, 96), _softcap_np, _softcap_slope),
    ("softcap_n1000", {"score_mod": _softcap, "causal": True}, (1, 1, 1, 1000, 1000, 64),
     _softcap_np, _softcap_slope),
    ("prefix_lm", {"mask_mod": _prefix_lm}, (1, 2, 2, 128, 128, 64), None, None),
    ("fully_masked_rows", {"mask_mod": _late_rows}, (1, 2, 2, 17, 17, 64), None, None),
]


def _check(kernel, spec_kwargs, shape, sm_np, slope, buffers=None, ref_kwargs=None):
    B, H, Hk, Nq, Nk, D = shape
    q, k, v = _randn(B, H, Nq, D), _randn(B, Hk, Nk, D), _randn(B, Hk, Nk, D)
    g = _randn(B, H, Nq, D)
    buffers = buffers or {}
    o, lse = kernel(q, k, v, return_lse=True, **buffers)
    poisoned = tuple(np.full_like(x, np.nan) for x in (q, k, v))
    dq, dk, dv = kernel.grad(q, k, v, o, lse, g, out=poisoned, **buffers)
    assert all(a is b for a, b in zip((dq, dk, dv), poisoned))
    kw = dict(causal=spec_kwargs.get("causal", False), window=spec_kwargs.get("window"),
              score_mod=sm_np, score_mod_grad=slope, **(ref_kwargs or {}))
    rq, rk, rv = ref_grad(q, k, v, g, **kw)
    errors = tuple(ref.relative_error(a, r) for a, r in ((dq, rq), (dk, rk), (dv, rv)))
    print("errors dq dk dv", errors)
    assert all(e <= TOL for e in errors), errors
    return dq, dk, dv


@pytest.mark.parametrize("name,spec_kwargs,shape,sm_np,slope", CASES, ids=[c[0] for c in CASES])
def test_grad_matches_float64(name, spec_kwargs, shape, sm_np, slope):
    kernel = ts.compile(ts.attention(**spec_kwargs), head_dim=shape[5])
    mask = spec_kwargs.get("mask_mod")
    dq, _, _ = _check(kernel, spec_kwargs, shape, sm_np, slope,
                      ref_kwargs={"mask_mod": mask} if mask else None)
    if name == "fully_masked_rows":
        assert np.all(dq[:, :, :3] == 0)


def test_document_mask():
    N = 128
    doc = np.repeat(np.arange(4, dtype=np.int32), [30, 50, 7, 41])
    kernel = ts.compile(ts.attention(mask_mod=_document), head_dim=64)
    _check(kernel, {}, (2, 2, 2, N, N, 64), None, None, buffers={"doc": doc},
           ref_kwargs={"mask_mod": lambda b, h, i, j: doc[i] == doc[j]})


def _table_case(spec, table_name, table, shape, sm_np, index, slope, **spec_kwargs):
    """dq, dk, dv and the table's gradient against float64: dT[index(b, h, i, j)] summed
    from dS' ∘ slope(b, h, i, j) (the reference's dS', summed here with np.add.at)."""
    B, H, Hk, Nq, Nk, D = shape
    kernel = ts.compile(spec, head_dim=D)
    q, k, v = _randn(B, H, Nq, D), _randn(B, Hk, Nk, D), _randn(B, Hk, Nk, D)
    g = _randn(B, H, Nq, D)
    o, lse = kernel(q, k, v, return_lse=True, **{table_name: table})
    dq, dk, dv, dt = kernel.grad(q, k, v, o, lse, g, grad_tables=(table_name,),
                                 **{table_name: table})
    ref_dt = np.zeros(table.shape)
    i, j = np.arange(Nq)[:, None], np.arange(Nk)[None, :]

    def collect(b, h, ds_modified):
        np.add.at(ref_dt, index(b, h, i, j), ds_modified * slope(b, h, i, j))

    rq, rk, rv = ref_grad(q, k, v, g, score_mod=sm_np, score_mod_grad=_one,
                          on_score_grad=collect, **spec_kwargs)
    errors = [ref.relative_error(a, r) for a, r in ((dq, rq), (dk, rk), (dv, rv), (dt, ref_dt))]
    print("errors dq dk dv dtable", errors)
    assert all(e <= TOL for e in errors), errors


def test_learnable_bias_table():
    """A relative-position bias bias[h, i - j + N - 1] receives its gradient."""
    H, N = 2, 70
    table = _randn(H, 2 * N - 1)

    def biased(s, b, h, i, j):
        return s + BIAS[h, i - j + N - 1]

    _table_case(ts.attention(score_mod=biased, causal=True), "bias", table, (1, H, 1, N, N, 64),
                lambda s, b, h, i, j: s + table[h, i - j + N - 1],
                lambda b, h, i, j: (np.full_like(i - j, h), i - j + N - 1),
                lambda b, h, i, j: 1.0, causal=True)


def test_alibi_slopes_table():
    """Per-head ALiBi slopes read from a table: dslopes[h] = -Σ dS' |i - j|."""
    H, N = 4, 100
    table = (0.5 ** np.arange(1, H + 1)).astype(np.float32)

    def alibi(s, b, h, i, j):
        return s - SLOPES[h] * abs(i - j)

    _table_case(ts.attention(score_mod=alibi), "slopes", table, (2, H, 2, N, N, 96),
                lambda s, b, h, i, j: s - table[h] * np.abs(i - j),
                lambda b, h, i, j: np.full(np.broadcast(i, j).shape, h),
                lambda b, h, i, j: -np.abs(i - j).astype(np.float64))


def test_table_gradient_errors():
    kernel = ts.compile(ts.attention(mask_mod=_document,
                                     score_mod=lambda s, b, h, i, j: s - SLOPES[h]), head_dim=64)
    with pytest.raises(ts.SpecError, match="table 'doc' is int32; only float32 tables"):
        kernel.grad(*(np.zeros((1, 1, 4, 64), np.float32),) * 4, np.zeros((1, 1, 4), np.float32),
                    np.zeros((1, 1, 4, 64), np.float32), grad_tables=("doc",),
                    doc=np.zeros(4, np.int32), slopes=np.zeros(1, np.float32))
    with pytest.raises(ts.SpecError, match="'nope' is not a table of this spec"):
        kernel.grad(*(np.zeros((1, 1, 4, 64), np.float32),) * 4, np.zeros((1, 1, 4), np.float32),
                    np.zeros((1, 1, 4, 64), np.float32), grad_tables=("nope",),
                    doc=np.zeros(4, np.int32), slopes=np.zeros(1, np.float32))


@pytest.mark.parametrize("block_q", [64, 1])
def test_block_sparse(block_q):
    B, H, N, D, bk = 1, 2, 256, 64, 64
    nqb = -(-N // block_q)
    lists = np.full((B, H, nqb, 3), -1, np.int32)
    for h in range(H):
        for qb in range(nqb):
            picks = rng.choice(N // bk, size=2, replace=False)
            lists[0, h, qb, :2] = np.sort(picks)
    spec_kwargs = {"causal": True, "block_sparse": (block_q, bk)}
    kernel = ts.compile(ts.attention(**spec_kwargs), head_dim=D)
    _check(kernel, spec_kwargs, (B, H, H, N, N, D), None, None,
           buffers={"block_indices": lists},
           ref_kwargs={"block_sparse": (block_q, bk), "block_indices": lists})


@pytest.mark.parametrize("case", ["plain", "causal_gqa", "softcap_mask"])
def test_reference_against_finite_differences(case):
    """The float64 backward agrees with central differences of reference.attention."""
    B, H, Hk, Nq, Nk, D = (1, 2, 1, 5, 7, 4)
    kw, grad_kw = {}, {}
    if case == "causal_gqa":
        kw = {"causal": True}
    if case == "softcap_mask":
        kw = {"score_mod": _softcap_np, "mask_mod": _late_rows}
        grad_kw = {"score_mod_grad": _softcap_slope}
    x = [rng.standard_normal(s) for s in ((B, H, Nq, D), (B, Hk, Nk, D), (B, Hk, Nk, D))]
    g = rng.standard_normal((B, H, Nq, D))
    analytic = ref_grad(*x, g, **kw, **grad_kw)
    eps = 1e-6
    for which in range(3):
        numeric = np.zeros_like(x[which])
        for idx in np.ndindex(x[which].shape):
            plus, minus = [a.copy() for a in x], [a.copy() for a in x]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            f = lambda args: float(np.sum(ref.attention(*args, **kw)[0] * g))  # noqa: E731
            numeric[idx] = (f(plus) - f(minus)) / (2 * eps)
        assert ref.relative_error(analytic[which], numeric) < 1e-7


def test_bad_grad_out():
    kernel = ts.compile(ts.attention(causal=True), head_dim=64)
    q, k, v = _randn(1, 2, 9, 64), _randn(1, 2, 9, 64), _randn(1, 2, 9, 64)
    o, lse = kernel(q, k, v, return_lse=True)
    with pytest.raises(ValueError, match=r"grad_out must be float32 of shape \(1, 2, 9, 64\)"):
        kernel.grad(q, k, v, o, lse, _randn(1, 2, 8, 64))
    with pytest.raises(ValueError, match="grad_out must be float32"):
        kernel.grad(q, k, v, o, lse, o.astype(np.float64))
    with pytest.raises(ValueError, match="lse must be float32"):
        kernel.grad(q, k, v, o, lse[:, :1], o)


def test_torch_autograd():
    torch = pytest.importorskip("torch")
    kernel = ts.compile(ts.attention(causal=True, score_mod=_softcap), head_dim=64)
    q, k, v = (torch.randn(1, 2, 33, 64, requires_grad=True) for _ in range(3))
    out = kernel(q, k, v)
    g = torch.randn_like(out)
    out.backward(g)
    rq, rk, rv = ref_grad(q.detach().numpy(), k.detach().numpy(), v.detach().numpy(),
                          g.numpy(), causal=True, score_mod=_softcap_np,
                          score_mod_grad=_softcap_slope)
    for t, r in ((q, rq), (k, rk), (v, rv)):
        assert ref.relative_error(t.grad.numpy(), r) <= TOL


def test_torch_autograd_table():
    """A float table that requires grad gets .grad (a learnable bias), q too."""
    torch = pytest.importorskip("torch")
    H, N = 2, 40

    def biased(s, b, h, i, j):
        return s + BIAS[h, i - j + N - 1]

    kernel = ts.compile(ts.attention(score_mod=biased, causal=True), head_dim=64)
    table = torch.randn(H, 2 * N - 1, requires_grad=True)
    q = torch.randn(1, H, N, 64, requires_grad=True)
    k, v = torch.randn(1, H, N, 64), torch.randn(1, H, N, 64)
    out = kernel(q, k, v, bias=table)
    g = torch.randn_like(out)
    out.backward(g)
    dq, _, _, dt = kernel.grad(q.detach(), k, v, *kernel(q.detach(), k, v, return_lse=True,
                                                           bias=table.detach()),
                               g, grad_tables=("bias",), bias=table.detach())
    assert np.array_equal(q.grad.numpy(), dq) and np.array_equal(table.grad.numpy(), dt)


def test_deterministic():
    """The backward writes every gradient once, in a fixed order: the same bits twice."""
    kernel = ts.compile(ts.attention(causal=True, score_mod=_alibi), head_dim=64)
    q, k, v, g = (_randn(1, 4, 90, 64) for _ in range(4))
    o, lse = kernel(q, k, v, return_lse=True)
    first = kernel.grad(q, k, v, o, lse, g)
    second = kernel.grad(q, k, v, o, lse, g)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


# The mask_mod backward walks classified tile lists (passes/SoftmaxGradClassification.cpp):
# many short documents leave most tile pairs empty, ragged N leaves partial tiles at the
# ends, D = 128 walks 32-query dK / dV tiles (two class rows per 64-row tile) and
# grad_query_tile = 16 four; a mask reading the head has lists per head (GQA groups).
def _short_docs(n, mean, seed):
    lengths = np.random.default_rng(seed).integers(1, 2 * mean, size=n)
    return np.repeat(np.arange(n, dtype=np.int32), lengths)


def _head_window_document(b, h, i, j):
    return (DOCS[i] == DOCS[j]) & (i - j < 24 * (h + 1))


@pytest.mark.parametrize("Nq,Nk,D,causal,query_tile,heads", [
    (1000, 1000, 64, True, 0, (2, 2)),
    (1000, 1000, 128, True, 0, (4, 2)),
    (777, 777, 128, False, 16, (2, 1)),
    (17, 17, 64, True, 0, (2, 2)),
    (1, 200, 64, False, 0, (2, 2)),  # Nk = 1 would have dq = dk = 0 exactly
    (300, 300, 96, True, 0, (4, 2)),
], ids=["n1000_d64", "n1000_d128_gqa", "n777_bidir_qtile16", "n17", "nq1", "n300_d96"])
def test_many_short_documents(Nq, Nk, D, causal, query_tile, heads):
    N = max(Nq, Nk)
    doc = _short_docs(N, 12, seed=N + D)[:N]  # ~40 documents per 1000 tokens
    H, Hk = heads
    kernel = ts.compile(ts.attention(mask_mod=_document, causal=causal), head_dim=D)
    if query_tile:
        kernel.grad_config = ts.Config(grad_query_tile=query_tile)
    _check(kernel, {"causal": causal}, (2, H, Hk, Nq, Nk, D), None, None,
           buffers={"doc": doc}, ref_kwargs={"mask_mod": lambda b, h, i, j: doc[i] == doc[j]})


def test_per_head_classification_gqa():
    N = 500
    doc = _short_docs(N, 60, seed=5)[:N]
    kernel = ts.compile(ts.attention(mask_mod=_head_window_document, causal=True), head_dim=64)
    _check(kernel, {"causal": True}, (1, 4, 2, N, N, 64), None, None, buffers={"doc": doc},
           ref_kwargs={"mask_mod": lambda b, h, i, j: (doc[i] == doc[j]) & (i - j < 24 * (h + 1))})


def test_mask_mod_tiles_visited_from_lists():
    """Fully masked tile pairs are never visited: the dK / dV and dQ grids walk the
    classification's lists (loops over a count read from them), and the mask is
    evaluated once per pair by the classification, then only on partial tiles."""
    from tessera.core import require_core
    from tessera.softmax_grad import grad_mlir
    spec = ts.attention(mask_mod=_document, causal=True)
    tile_ir = require_core().lower(grad_mlir(spec, "float32", 64, 64), "tile",
                                   **ts.Config().as_kwargs())
    grids = tile_ir.split("tile.grid[")[1:]
    walks = [g for g in grids if "tile.dot" in g]
    assert len(walks) == 2  # dK / dV, dQ
    for walk in walks:
        assert "{tile.speculable}" in walk  # the list walk
        assert re.search(r"memref\.load %\w+\[[^]]*\] : memref<\w+x\w+x\?x\?xi32>", walk)
        # doc[i] and doc[j] gathered once, in the branch of partial tiles (before: an
        # any-kept test on every tile pair, then again on the pair).
        assert walk.count("tile.gather") == 2, walk.count("tile.gather")
    # The classification bounds doc over a tile's rows and keys by its least and
    # greatest entry (two vector gathers) before counting element-wise.
    classify = next(g for g in grids if "<min>" in g)
    assert classify.count("tile.reduce <min>") == 2 and classify.count("tile.gather") == 4


def _striped(b, h, i, j):  # a remainder: element-wise classification everywhere
    return (i // 16) % 3 != (j // 16) % 3


def _head_prefix_band(b, h, i, j):  # decided per tile by interval arithmetic (whole tiles)
    return (j < 40) | (i - j < 70 * (h + 1))


@pytest.mark.parametrize("mask", [_striped, _head_prefix_band], ids=["striped", "prefix_band"])
@pytest.mark.parametrize("causal,window,shape", [
    (True, 37, (1, 2, 1, 130, 200, 64)),
    (True, None, (1, 2, 1, 200, 130, 128)),
    (False, 20, (1, 2, 1, 100, 150, 64)),
    (False, None, (1, 4, 2, 300, 300, 96)),
], ids=["causal_window_nq_lt_nk", "causal_nq_gt_nk", "bidir_window", "gqa"])
def test_mask_mod_lists_with_bounds(mask, causal, window, shape):
    """Classified lists clipped by causal / window bounds, Nq ≠ Nk, GQA."""
    spec_kwargs = {"causal": causal, "window": window}
    kernel = ts.compile(ts.attention(mask_mod=mask, **spec_kwargs), head_dim=shape[5])
    _check(kernel, spec_kwargs, shape, None, None, ref_kwargs={"mask_mod": mask})


TESSERA_OPT = Path(__file__).resolve().parents[2] / "build/bin/tessera-opt"
_SLOPES = ts.Buffer("slopes", "float32")
_DOC = ts.Buffer("doc")
DQ_ATOMIC_SPECS = {
    "causal": ts.attention(causal=True),
    "full": ts.attention(),
    "window": ts.attention(causal=True, window=40),
    "alibi": ts.attention(causal=True, score_mod=lambda s, b, h, i, j: s + _SLOPES[h] * (j - i)),
    "document": ts.attention(mask_mod=lambda b, h, i, j: _DOC[i] == _DOC[j]),
    "blocks": ts.attention(block_sparse=(64, 64)),
}


@pytest.mark.parametrize("name", list(DQ_ATOMIC_SPECS))
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("nq,nk,h,hk", [(100, 300, 4, 2), (77, 77, 4, 4), (300, 130, 4, 1)])
def test_dq_atomic_tile_program_matches_the_dq_grid(name, d, nq, nk, h, hk):
    """grad-dq-atomic's tile program (GPU pipelines only) run by the CPU lowering, which
    adds its scatter in a fixed order: the same gradients as the dQ grid's (f32 sums in
    another order), for [key, query] tiles (dQᵀ = Kᵀ dSᵀ, in 64-column pieces of K at
    D = 128), ragged Nq != Nk and GQA, bounds, masks and block lists."""
    if not TESSERA_OPT.exists():
        pytest.skip("tessera-opt not built")
    from tessera import _core
    from tessera.softmax_grad import grad_mlir
    rng = np.random.default_rng(nq + nk + d)
    spec = DQ_ATOMIC_SPECS[name]
    tables = {}
    if name == "alibi":
        tables = {"slopes": -np.linspace(0.1, 0.5, h).astype(np.float32)}
    elif name == "document":
        tables = {"doc": np.sort(rng.integers(0, 4, max(nq, nk))).astype(np.int32)}
    elif name == "blocks":
        blocks = rng.integers(-1, -(-nk // 64), (2, h, -(-nq // 64), 3)).astype(np.int32)
        tables = {"block_indices": blocks}
    kernel = ts.compile(spec, head_dim=d, dtype="float32", target="cpu")
    kernel.grad_config = ts.Config(block_m=64, block_n=64)
    q = rng.standard_normal((2, h, nq, d), dtype=np.float32)
    k, v = (rng.standard_normal((2, hk, nk, d), dtype=np.float32) for _ in range(2))
    g = rng.standard_normal((2, h, nq, d), dtype=np.float32)
    o, lse = kernel(q, k, v, return_lse=True, **tables)
    want = kernel.grad(q, k, v, o, lse, g, **tables)
    tile = subprocess.run([str(TESSERA_OPT), "--tessera-attn-to-tile=block-m=64 block-n=64 "
                           "grad-dq-atomic=true"], input=grad_mlir(spec, "float32", d, d),
                          capture_output=True, text=True, check=True).stdout
    assert "tile.scatter_add" in tile
    kernel._grad_impls = {((), kernel.grad_config): _core.CpuKernel(
        tile, spec.name + "_grad", **kernel.grad_config.as_kwargs())}
    got = kernel.grad(q, k, v, o, lse, g, **tables)
    for what, x, y in zip(("dq", "dk", "dv"), got, want):
        err = np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)
        assert err <= 1e-5, f"{what}: {err:.2e}"
