"""A window without causality (|j - (i + Nk - Nq)| < w) and block lists whose blocks are
not a multiple of the tile, on the CPU against float64. Outputs poisoned with NaN; ragged
lengths (1, not tile multiples, Nq != Nk)."""
import numpy as np
import pytest

import tessera
from tessera import reference

TOL = 1e-5
D = 32
SMALL = tessera.Config(block_m=16, block_n=16, num_warps=1)  # many tiles: classes matter
_KERNELS = {}


def kernel(window, extra=""):
    key = (window, extra)
    if key not in _KERNELS:
        kw = {"score_mod": lambda s, b, h, i, j: s * 0.5} if extra == "score_mod" else {}
        if extra == "mask_mod":
            kw = {"mask_mod": lambda b, h, i, j: (i + j) % 3 != 0}
        _KERNELS[key] = tessera.compile(tessera.attention(window=window, **kw), head_dim=D,
                                        config=SMALL)
    return _KERNELS[key]


def run(kern, nq, nk, h=2, hk=1, seed=0, **tables):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, h, nq, D)).astype(np.float32)
    k, v = (rng.standard_normal((2, hk, nk, D)).astype(np.float32) for _ in range(2))
    out = np.full((2, h, nq, D), np.nan, np.float32)
    lse = np.full((2, h, nq), np.nan, np.float32)
    kern(q, k, v, out=out, lse_out=lse, **tables)
    return q, k, v, out, lse


def check(out, lse, ref, ref_lse):
    assert reference.relative_error(out, ref) <= TOL
    rows = np.isfinite(ref_lse)
    assert np.all(out[~rows] == 0)
    assert reference.relative_error(lse[rows], ref_lse[rows]) <= TOL


@pytest.mark.parametrize("window", [1, 7, 40])
@pytest.mark.parametrize("nq,nk", [(1, 1), (67, 67), (45, 130), (130, 45)])
def test_bidirectional_window(window, nq, nk):
    q, k, v, out, lse = run(kernel(window), nq, nk, seed=nq + window)
    check(out, lse, *reference.attention(q, k, v, window=window))


@pytest.mark.parametrize("extra", ["score_mod", "mask_mod"])
def test_bidirectional_window_with_modifiers(extra):
    q, k, v, out, lse = run(kernel(9, extra), 83, 83, h=4, hk=2, seed=3)
    kw = ({"score_mod": lambda s, b, h, i, j: s * 0.5} if extra == "score_mod" else
          {"mask_mod": lambda b, h, i, j: (i + j) % 3 != 0})
    check(out, lse, *reference.attention(q, k, v, window=9, **kw))


def test_bidirectional_window_differs_from_causal():
    """The test can fail: the causal window's output is not the bidirectional one's."""
    causal = tessera.compile(tessera.attention(causal=True, window=7), head_dim=D, config=SMALL)
    q, k, v, out, _ = run(causal, 50, 50)
    ref, _ = reference.attention(q, k, v, window=7)
    assert reference.relative_error(out, ref) > 1e-2


BLOCK = 50
KEEP = tessera.Buffer("keep", rank=3)


def test_fifty_token_blocks_as_a_mask_mod_over_a_block_table():
    """A block list of 50-token blocks (not a multiple of a power-of-two tile) as
    users write it: a mask_mod reading keep[h, q block, key block], classified per tile."""
    spec = tessera.attention(
        causal=True,
        mask_mod=lambda b, h, q_idx, kv_idx: KEEP[h, q_idx // BLOCK, kv_idx // BLOCK] != 0)
    kern = tessera.compile(spec, head_dim=D, config=SMALL)
    n = 237
    blocks = -(-n // BLOCK)
    rng = np.random.default_rng(7)
    keep = (rng.random((2, blocks, blocks)) < 0.4).astype(np.int32)
    keep[:, np.arange(blocks), np.arange(blocks)] = 1  # the diagonal block, as MoBA keeps it
    q, k, v, out, lse = run(kern, n, n, keep=keep)
    lists = np.full((2, 2, blocks, blocks), -1, np.int32)
    for h in range(2):
        for qb in range(blocks):
            listed = np.flatnonzero(keep[h, qb])
            lists[:, h, qb, :len(listed)] = listed
    check(out, lse, *reference.attention(q, k, v, causal=True, block_sparse=(BLOCK, BLOCK),
                                         block_indices=lists))


def test_block_sparse_blocks_off_the_tile_are_rejected_with_the_rule():
    kern = tessera.attention(causal=True, block_sparse=(BLOCK, BLOCK))
    with pytest.raises(tessera.CompileError,
                       match=r"block_q \(50\) must be 1 or a multiple of the config's block_m "
                             r"\(64\).*tiles are powers of two.*mask_mod reading a block table"):
        tessera.compile(kern, head_dim=D)
