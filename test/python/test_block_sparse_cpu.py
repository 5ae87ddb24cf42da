"""Block-sparse softmax attention (the block_indices operand: MoBA / NSA selections) on
the CPU against float64: only listed key blocks are visited, masks still apply."""
import numpy as np
import pytest

import tessera
from tessera.reference import attention as reference, relative_error

_KERNELS = {}


def kernel(causal, blocks, config=None):
    key = (causal, blocks, config)
    if key not in _KERNELS:
        spec = tessera.attention(causal=causal, block_sparse=blocks)
        _KERNELS[key] = tessera.compile(spec, head_dim=64, config=config)
    return _KERNELS[key]


def random_lists(rng, b, h, n, blocks, k):
    bq, bk = blocks
    nqb, nkb = -(-n // bq), -(-n // bk)
    lists = np.full((b, h, nqb, k), -1, np.int32)
    for idx in np.ndindex(b, h, nqb):
        chosen = rng.integers(0, nkb, size=rng.integers(1, k + 1))  # repeats allowed
        lists[idx][:len(chosen)] = chosen
    return lists


@pytest.mark.parametrize("n", [1, 17, 200, 333])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("list_heads", [1, 4])
@pytest.mark.parametrize("stages", [1, 2])  # one stage: the branchy walk; two: the segments
def test_listed_blocks_only(n, causal, list_heads, stages):
    rng = np.random.default_rng(n + 10 * causal + list_heads)
    q = rng.standard_normal((2, 4, n, 64), dtype=np.float32)
    k = rng.standard_normal((2, 2, n, 64), dtype=np.float32)
    v = rng.standard_normal((2, 2, n, 64), dtype=np.float32)
    lists = random_lists(rng, 2, list_heads, n, (64, 64), 3)
    out = np.full(q.shape, np.nan, np.float32)
    kernel(causal, (64, 64), tessera.Config(num_stages=stages))(q, k, v, block_indices=lists,
                                                              out=out)
    ref, _ = reference(q, k, v, causal=causal, block_sparse=(64, 64), block_indices=lists)
    assert relative_error(out, ref) <= 1e-5


@pytest.mark.parametrize("n", [1, 17, 300])
def test_per_token_lists(n):
    # block_q = 1 (MoBA / NSA selections): each row its own list, unsorted, repeats and -1.
    rng = np.random.default_rng(n)
    q, k, v = (rng.standard_normal((1, 2, n, 64), dtype=np.float32) for _ in range(3))
    lists = random_lists(rng, 1, 2, n, (1, 32), 3)
    got = kernel(True, (1, 32), tessera.Config(block_n=32))(q, k, v, block_indices=lists)
    ref, _ = reference(q, k, v, causal=True, block_sparse=(1, 32), block_indices=lists)
    assert relative_error(got, ref) <= 1e-5


def test_blocks_larger_than_tiles():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 2, 300, 64), dtype=np.float32) for _ in range(3))
    lists = random_lists(rng, 1, 2, 300, (128, 64), 2)
    got = kernel(True, (128, 64), tessera.Config(block_m=64, block_n=32))(q, k, v, block_indices=lists)
    ref, _ = reference(q, k, v, causal=True, block_sparse=(128, 64), block_indices=lists)
    assert relative_error(got, ref) <= 1e-5


def test_every_block_listed_equals_causal_attention():
    # MoBA with no more blocks than it may select is exact causal attention.
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 2, 256, 64), dtype=np.float32) for _ in range(3))
    lists = np.broadcast_to(np.arange(4, dtype=np.int32), (1, 1, 4, 4)).copy()
    got = kernel(True, (64, 64))(q, k, v, block_indices=lists)
    ref, _ = reference(q, k, v, causal=True)
    assert relative_error(got, ref) <= 1e-5


def test_bad_block_sparse_inputs():
    with pytest.raises(tessera.SpecError, match=r"block_sparse must be \(block_q, block_k\)"):
        tessera.attention(block_sparse=(64,))
    with pytest.raises(tessera.CompileError, match=r"must be 1 or a multiple of the config's block_m"):
        kernel(False, (48, 64))
    k_ = kernel(False, (64, 64))
    q = np.zeros((1, 2, 100, 64), np.float32)
    with pytest.raises(TypeError, match="pass block_indices="):
        k_(q, q, q)
    with pytest.raises(ValueError, match=r"block_indices must be int32 of shape \(1, 1 or 2, 2, K\)"):
        k_(q, q, q, block_indices=np.zeros((1, 2, 3, 2), np.int32))


def ascending_lists(rng, b, h, n, blocks, k, order):
    """Lists whose listed blocks ascend (the straight segments of the walk), with trailing
    -1 padding; "holes" puts a -1 between listed entries, "descending" reverses them
    (both walked by the branchy loop)."""
    bq, bk = blocks
    nqb, nkb = -(-n // bq), -(-n // bk)
    lists = np.full((b, h, nqb, k), -1, np.int32)
    for idx in np.ndindex(b, h, nqb):
        chosen = np.sort(rng.choice(nkb, size=rng.integers(1, min(k, nkb) + 1), replace=False))
        if order == "descending":
            chosen = chosen[::-1]
        if order == "holes" and k > len(chosen):
            chosen = np.insert(chosen, rng.integers(0, len(chosen)), -1)
        lists[idx][:len(chosen)] = chosen
    return lists


@pytest.mark.parametrize("n", [1, 17, 200, 333])
@pytest.mark.parametrize("bounds", [{}, {"causal": True}, {"causal": True, "window": 70},
                                    {"window": 90}])
@pytest.mark.parametrize("order", ["ascending", "holes", "descending"])
@pytest.mark.parametrize("stages", [2, 3])
def test_ascending_lists_walk_straight_segments(n, bounds, order, stages):
    # Blocks of 64 keys over 32-key tiles: each listed block is two tiles of the walk, some
    # cut by the bounds (masked segments), some kept whole (unmasked).
    rng = np.random.default_rng(n + stages + 7 * len(bounds) + len(order))
    q = rng.standard_normal((2, 4, n, 64), dtype=np.float32)
    k = rng.standard_normal((2, 2, n, 64), dtype=np.float32)
    v = rng.standard_normal((2, 2, n, 64), dtype=np.float32)
    lists = ascending_lists(rng, 2, 4, n, (64, 64), 4, order)
    spec = tessera.attention(block_sparse=(64, 64), **bounds)
    config = tessera.Config(block_m=64, block_n=32, num_stages=stages)
    out = np.full(q.shape, np.nan, np.float32)
    tessera.compile(spec, head_dim=64, config=config)(q, k, v, block_indices=lists, out=out)
    ref, _ = reference(q, k, v, block_sparse=(64, 64), block_indices=lists, **bounds)
    assert relative_error(out, ref) <= 1e-5


@pytest.mark.parametrize("order", ["ascending", "holes"])
def test_ascending_lists_with_a_mask_mod(order):
    # A mask_mod masks every tile: the whole walk is one masked segment.
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 300, 64), dtype=np.float32) for _ in range(3))
    lists = ascending_lists(rng, 1, 1, 300, (64, 64), 3, order)
    mask = lambda b, h, i, j: (i + j) % 3 != 0
    spec = tessera.attention(causal=True, block_sparse=(64, 64), mask_mod=mask)
    out = np.full(q.shape, np.nan, np.float32)
    tessera.compile(spec, head_dim=64, config=tessera.Config(block_n=32))(
        q, k, v, block_indices=lists, out=out)
    ref, _ = reference(q, k, v, causal=True, mask_mod=mask, block_sparse=(64, 64),
                       block_indices=lists)
    assert relative_error(out, ref) <= 1e-5
