"""Linear attention and Lightning Attention-2 on the CPU against float64 references
(SEMANTICS.md §2): outputs and final states, decode after prefill, bad input."""
import numpy as np
import pytest

import tessera
from tessera import linear as L
from tessera.reference import relative_error

TOL = 1e-5
_KERNELS = {}


def kernel(spec, d, block_m=32, split=1, num_warps=4):
    key = (spec, d, block_m, split, num_warps)
    if key not in _KERNELS:
        config = tessera.Config(block_m=block_m, split=split, num_warps=num_warps)
        _KERNELS[key] = tessera.compile(spec, head_dim=d, config=config)
    return _KERNELS[key]


def inputs(b, h, hk, n, d, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, h, n, d), dtype=np.float32) * 0.3
    k = rng.standard_normal((b, hk, n, d), dtype=np.float32) * 0.3
    v = rng.standard_normal((b, hk, n, d), dtype=np.float32)
    return q, k, v


def run_and_check(spec, q, k, v, d, block_m=32, split=1, num_warps=4, **extra):
    b, h, n, _ = q.shape
    out = np.full((b, h, n, d), np.nan, np.float32)
    state = np.full((b, h, d, d), np.nan, np.float32)
    o, s = kernel(spec, d, block_m, split, num_warps)(q, k, v, out=out, state_out=state, **extra)
    assert o is out and s is state
    ro, rs = L.reference(q, k, v, causal=spec.causal, feature_map=spec.feature_map,
                         scale=spec.scale, decay=extra.get("decay"),
                         initial_state=extra.get("initial_state"))
    assert relative_error(o, ro) <= TOL, relative_error(o, ro)
    assert relative_error(s, rs) <= TOL, relative_error(s, rs)


@pytest.mark.parametrize("n", [1, 17, 255, 1000])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("decay", ["none", "alibi", "small"])
def test_lightning_attention2(n, d, decay):
    q, k, v = inputs(1, 4, 4, n, d, seed=n + d)
    spec = tessera.linear_attention(decay=decay != "none")
    extra = {}
    if decay == "alibi":
        extra["decay"] = L.alibi_decay(4)
    elif decay == "small":  # strong decay: λ^B underflows towards 0 across a block
        extra["decay"] = np.array([0.5, 0.3, 0.1, 0.05], np.float32)
    run_and_check(spec, q, k, v, d, **extra)


@pytest.mark.parametrize("feature_map", ["identity", "elu_plus_one", "relu"])
@pytest.mark.parametrize("causal", [True, False])
def test_feature_maps_and_initial_state(feature_map, causal):
    q, k, v = inputs(2, 4, 2, 257, 64, seed=7)
    state = np.random.default_rng(3).standard_normal((2, 4, 64, 64), dtype=np.float32)
    spec = tessera.linear_attention(causal=causal, feature_map=feature_map, initial_state=True,
                                    scale=0.125)
    run_and_check(spec, q, k, v, 64, initial_state=state)


# At D = 64, a piece's state is carried as Sᵀ when its value columns fill whole warps'
# rows (16 x num_warps), else as S: split = 8 with 1 warp makes 4 pieces (Sᵀ) x 2 sequence
# chunks, with 8 warps 4 pieces (S) x 2 chunks, with 4 warps 8 chunks; split = 3: 3
# chunks. Each later chunk starts from the decayed sum of the chunks before it.
@pytest.mark.parametrize("split,num_warps", [(3, 4), (8, 1), (8, 4), (8, 8)])
@pytest.mark.parametrize("n", [1, 17, 100, 255])
@pytest.mark.parametrize("causal", [True, False])
def test_split_into_value_pieces_and_sequence_chunks(split, num_warps, n, causal):
    q, k, v = inputs(1, 2, 1, n, 64, seed=n + split)
    state = np.random.default_rng(5).standard_normal((1, 2, 64, 64), dtype=np.float32)
    spec = tessera.linear_attention(causal=causal, decay=causal, initial_state=True)
    extra = {"initial_state": state}
    if causal:
        extra["decay"] = L.alibi_decay(2)
    run_and_check(spec, q, k, v, 64, block_m=16, split=split, num_warps=num_warps, **extra)


@pytest.mark.parametrize("block_m", [16, 64])
def test_block_size_does_not_change_the_result(block_m):
    q, k, v = inputs(1, 2, 1, 100, 64, seed=11)
    run_and_check(tessera.linear_attention(decay=True), q, k, v, 64, block_m=block_m,
                  decay=L.alibi_decay(2))


def test_decode_after_prefill_equals_full_sequence():
    q, k, v = inputs(2, 4, 2, 53, 64, seed=5)
    lam = L.alibi_decay(4)
    prefill = kernel(tessera.linear_attention(decay=True), 64)
    step = kernel(tessera.linear_decode(decay=True), 64)
    o, s = prefill(q[:, :, :50].copy(), k[:, :, :50].copy(), v[:, :, :50].copy(), decay=lam)
    outs = [o]
    for t in range(50, 53):
        ot, s = step(q[:, :, t:t + 1].copy(), k[:, :, t:t + 1].copy(), v[:, :, t:t + 1].copy(),
                     state=s, decay=lam)
        outs.append(ot)
    full, full_state = L.reference(q, k, v, decay=lam)
    assert relative_error(np.concatenate(outs, axis=2), full) <= TOL
    assert relative_error(s, full_state) <= TOL


def test_tile_program_keeps_state_on_chip():
    ir = kernel(tessera.linear_attention(decay=True), 64).ir("tile")
    assert "tile.grid" in ir and "math.exp2" in ir
    # The state is a loop-carried tile, never stored per block: one store of it, at the end.
    assert ir.count("tensor<64x64xf32>, memref<?x?x64x64xf32") == 1


@pytest.mark.parametrize("bad, match", [
    (dict(causal=False, decay=True), "decay needs causal"),
    (dict(feature_map="softmax"), "feature_map must be one of"),
    (dict(scale=0.0), "scale must be a positive"),
])
def test_bad_specs(bad, match):
    with pytest.raises(tessera.SpecError, match=match):
        tessera.linear_attention(**bad)


def test_bad_calls():
    k_ = kernel(tessera.linear_attention(decay=True), 64)
    q, k, v = inputs(1, 4, 4, 8, 64, seed=1)
    with pytest.raises(TypeError, match=r"missing \['decay'\]"):
        k_(q, k, v)
    with pytest.raises(ValueError, match=r"decay must be float32 of shape \(4,\)"):
        k_(q, k, v, decay=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"decay values must lie in \(0, 1\]"):
        k_(q, k, v, decay=np.full(4, 1.5, np.float32))
    with pytest.raises(ValueError, match="q and k must have the same length, got 8 and 4"):
        k_(q, k[:, :, :4], v[:, :, :4], decay=L.alibi_decay(4))
    step = kernel(tessera.linear_decode(), 64)
    with pytest.raises(ValueError, match="a decode step takes one token"):
        step(q, k, v, state=np.zeros((1, 4, 64, 64), np.float32))


@pytest.mark.parametrize("n", [1, 17, 255, 1000])
@pytest.mark.parametrize("d", [64, 128])
def test_backward_lightning_attention2(n, d):
    q, k, v = inputs(1, 4, 2, n, d, seed=n + 3 * d)
    grad_out = np.random.default_rng(n).standard_normal((1, 4, n, d), dtype=np.float32)
    lam = L.alibi_decay(4)
    dq, dk, dv = kernel(tessera.linear_attention(decay=True), d).grad(q, k, v, grad_out, decay=lam)
    rq, rk, rv = L.reference_grad(q, k, v, grad_out, decay=lam)
    for got, ref in ((dq, rq), (dk, rk), (dv, rv)):
        assert relative_error(got, ref) <= TOL


@pytest.mark.parametrize("split", [2, 4])
def test_backward_in_pieces(split):
    # Each sweep over pieces of the state: D = 128 in 2 pieces of 64 rows (dQ, dK: 16 rows
    # per warp), Dv in 2 or 4 pieces of columns (dV); GQA sums over a group of two heads.
    q, k, v = inputs(2, 4, 2, 150, 128, seed=split)
    grad_out = np.random.default_rng(split).standard_normal(q.shape, dtype=np.float32)
    lam = L.alibi_decay(4)
    spec = tessera.linear_attention(decay=True)
    got = kernel(spec, 128, split=split).grad(q, k, v, grad_out, decay=lam)
    for g, r in zip(got, L.reference_grad(q, k, v, grad_out, decay=lam)):
        assert relative_error(g, r) <= TOL


# Sequence chunks (split / pieces of them per head and batch): each chunk's own state and
# state gradient go through workspaces; n = 1 and 17 leave trailing chunks with no block.
@pytest.mark.parametrize("split", [2, 8, 24])
@pytest.mark.parametrize("n", [1, 17, 150])
def test_backward_in_sequence_chunks(split, n):
    q, k, v = inputs(2, 4, 2, n, 64, seed=n + split)
    rng = np.random.default_rng(n)
    grad_out = rng.standard_normal(q.shape, dtype=np.float32)
    state = rng.standard_normal((2, 4, 64, 64), dtype=np.float32)
    lam = L.alibi_decay(4)
    spec = tessera.linear_attention(decay=True, initial_state=True, feature_map="elu_plus_one")
    got = kernel(spec, 64, block_m=16, split=split).grad(q, k, v, grad_out, decay=lam,
                                                         initial_state=state)
    ref = L.reference_grad(q, k, v, grad_out, decay=lam, feature_map="elu_plus_one",
                           initial_state=state)
    for g, r in zip(got, ref):
        assert relative_error(g, r) <= TOL


@pytest.mark.parametrize("feature_map", ["identity", "elu_plus_one", "relu"])
def test_backward_feature_maps_initial_state_no_decay(feature_map):
    q, k, v = inputs(2, 2, 2, 70, 64, seed=9)
    rng = np.random.default_rng(2)
    grad_out = rng.standard_normal(q.shape, dtype=np.float32)
    state = rng.standard_normal((2, 2, 64, 64), dtype=np.float32)
    spec = tessera.linear_attention(feature_map=feature_map, initial_state=True, scale=0.5)
    got = kernel(spec, 64).grad(q, k, v, grad_out, initial_state=state)
    ref = L.reference_grad(q, k, v, grad_out, feature_map=feature_map, scale=0.5,
                           initial_state=state)
    for g, r in zip(got, ref):
        assert relative_error(g, r) <= TOL


@pytest.mark.parametrize("split", [1, 4])
def test_backward_value_dim_differs_from_head_dim(split):
    # D = 64, Dv = 128: the dQ and dK sweeps carry [Dv, D] states, dV [D, Dv]; with
    # split = 4 they cut them into different pieces and sequence chunks.
    rng = np.random.default_rng(split)
    q = rng.standard_normal((2, 4, 150, 64), dtype=np.float32) * 0.3
    k = rng.standard_normal((2, 2, 150, 64), dtype=np.float32) * 0.3
    v = rng.standard_normal((2, 2, 150, 128), dtype=np.float32)
    grad_out = rng.standard_normal((2, 4, 150, 128), dtype=np.float32)
    state = rng.standard_normal((2, 4, 64, 128), dtype=np.float32)
    lam = L.alibi_decay(4)
    spec = tessera.linear_attention(decay=True, initial_state=True)
    compiled = tessera.compile(spec, head_dim=64, value_dim=128,
                               config=tessera.Config(block_m=32, split=split))
    got = compiled.grad(q, k, v, grad_out, decay=lam, initial_state=state)
    ref = L.reference_grad(q, k, v, grad_out, decay=lam, initial_state=state)
    for g, r in zip(got, ref):
        assert relative_error(g, r) <= TOL


def test_reference_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal(s) for s in ((1, 2, 6, 4), (1, 1, 6, 4), (1, 1, 6, 4)))
    grad_out, lam = rng.standard_normal((1, 2, 6, 4)), np.array([0.9, 0.6])

    def loss(q, k, v):
        return (L.reference(q, k, v, decay=lam, feature_map="elu_plus_one")[0] * grad_out).sum()

    analytic = L.reference_grad(q, k, v, grad_out, decay=lam, feature_map="elu_plus_one")
    for which, x in enumerate((q, k, v)):
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus, minus = [a.copy() for a in (q, k, v)], [a.copy() for a in (q, k, v)]
            plus[which][idx] += 1e-6
            minus[which][idx] -= 1e-6
            numeric[idx] = (loss(*plus) - loss(*minus)) / 2e-6
        assert np.abs(numeric - analytic[which]).max() < 1e-6
