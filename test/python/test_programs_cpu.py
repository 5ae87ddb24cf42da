"""Programs of several attn ops (MoBA, NSA, HyperAttention and their pieces) on the CPU
against float64 references of SEMANTICS §3-§6 (tessera.reference_sparse). Each example's
spec is the one tested."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tessera
from tessera import reference_sparse as ref
from tessera.reference import attention as exact, relative_error

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import hyperattention  # noqa: E402
import moba  # noqa: E402
import nsa  # noqa: E402

TOL = 1e-5
_CACHE = {}


def cached(key, build):
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def ops_kernel(name, fn, **inputs):
    return cached(name, lambda: tessera.compile(tessera.program(fn, **inputs), head_dim=64))


@pytest.mark.parametrize("n", [1, 63, 200])
def test_compress(n):
    kern = ops_kernel("compress", lambda x: tessera.compress(x, block=32, stride=16), x="B H N D")
    x = randn(np.random.default_rng(n), 2, 3, n, 64)
    got = kern(x)
    assert got.shape == ref.compress(x, 32, 16).shape
    assert relative_error(got, ref.compress(x, 32, 16)) <= TOL if got.size else True


@pytest.mark.parametrize("score,group", [("dot", False), ("softmax", False), ("softmax", True)])
@pytest.mark.parametrize("block_q", [1, 16])
@pytest.mark.parametrize("n", [1, 17, 300])
def test_block_topk(score, group, block_q, n):
    def select(q, k):
        kb = tessera.compress(k, block=32)
        return tessera.block_topk(q, kb, block_q=block_q, block_k=32, k=3, causal=True,
                                  include_current=True, group_heads=group, score=score)
    kern = ops_kernel(("topk", score, group, block_q), select, q="B H N D", k="B G N D")
    rng = np.random.default_rng(n)
    q, k = randn(rng, 1, 4, n, 64), randn(rng, 1, 2, n, 64)
    want = ref.block_topk(q, ref.compress(k, 32, 32), block_q=block_q, block_k=32, k=3,
                          causal=True, include_current=True, group_heads=group, score=score)
    np.testing.assert_array_equal(kern(q, k), want)


def test_block_topk_without_current_pads_with_minus_one():
    def select(q, kb):
        return tessera.block_topk(q, kb, block_q=1, block_k=8, k=5)
    kern = ops_kernel("topk-plain", select, q="B H N D", kb="B H M D")
    rng = np.random.default_rng(0)
    q, kb = randn(rng, 1, 2, 40, 64), randn(rng, 1, 2, 3, 64)
    got = kern(q, kb)
    np.testing.assert_array_equal(got, ref.block_topk(q, kb, block_q=1, block_k=8, k=5))
    assert (got[..., 3:] == -1).all()


@pytest.mark.parametrize("n", [1, 17, 333, 9000])  # 9000: counts prefixed over 3 chunks of tiles
def test_lsh_sort_gather_scatter(n):
    def sort(x, projection):
        perm = tessera.lsh_sort(x, projection)
        rows = tessera.gather_rows(x, perm)
        return perm, rows, tessera.scatter_rows(rows, perm)
    kern = ops_kernel("lsh", sort, x="B H N D", projection=("D 7", "float32"))
    rng = np.random.default_rng(n)
    x, r = randn(rng, 2, 3, n, 64), randn(rng, 64, 7)
    perm, rows, back = kern(x, r)
    np.testing.assert_array_equal(perm, ref.lsh_sort(x, r))
    np.testing.assert_array_equal(rows, ref.gather_rows(x, perm))
    np.testing.assert_array_equal(back, x)


def test_gather_out_of_range_reads_zeros_and_scatter_drops():
    def rows(x, idx):
        return tessera.gather_rows(x, idx), tessera.scatter_rows(x, idx)
    kern = ops_kernel("rows", rows, x="B H N D", idx=("B H N", "int32"))
    rng = np.random.default_rng(4)
    x = randn(rng, 1, 2, 5, 64)
    idx = np.array([[[4, -1, 7, 0, 2], [1, 2, 3, 4, 0]]], np.int32)
    g, s = kern(x, idx)
    np.testing.assert_array_equal(g, ref.gather_rows(x, idx))
    np.testing.assert_array_equal(s, ref.scatter_rows(x, idx, 5))


@pytest.mark.parametrize("n", [1, 100, 257])
def test_merge_of_disjoint_key_sets_is_full_attention(n):
    spec = tessera.attention()

    def halves(q, k1, v1, k2, v2):
        oa, la = spec(q, k1, v1)
        ob, lb = spec(q, k2, v2)
        return tessera.merge(oa, la, ob, lb)
    kern = ops_kernel("merge", halves, q="B H N D", k1="B H M D", v1="B H M D",
                      k2="B H L D", v2="B H L D")
    rng = np.random.default_rng(n)
    q, k, v = randn(rng, 1, 2, n, 64), randn(rng, 1, 2, 150, 64), randn(rng, 1, 2, 150, 64)
    o, lse = kern(q, k[:, :, :61], v[:, :, :61], k[:, :, 61:], v[:, :, 61:])
    ro, rl = exact(q, k, v)
    assert relative_error(o, ro) <= TOL and relative_error(lse, rl) <= TOL


def moba_kernel(block, topk):
    return cached(("moba", block, topk),
                  lambda: tessera.compile(moba.moba_spec(block, topk), head_dim=64))


@pytest.mark.parametrize("n", [1, 17, 255, 1000])
def test_moba(n):
    rng = np.random.default_rng(n)
    q, k, v = randn(rng, 1, 4, n, 64), randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64)
    out = moba_kernel(64, 3)(q, k, v)
    assert relative_error(out, ref.moba(q, k, v, block=64, topk=3)) <= TOL


def test_moba_with_every_block_is_causal_attention():
    rng = np.random.default_rng(7)
    q, k, v = randn(rng, 1, 2, 300, 64), randn(rng, 1, 2, 300, 64), randn(rng, 1, 2, 300, 64)
    out = moba_kernel(64, 5)(q, k, v)
    assert relative_error(out, exact(q, k, v, causal=True)[0]) <= TOL


def nsa_kernel():
    # Blocks of 32 keys need key tiles of at most 32.
    return cached("nsa", lambda: tessera.compile(nsa.nsa_spec(block=32, topn=3, window=48),
                                                 head_dim=64, config=tessera.Config(block_n=32)))


@pytest.mark.parametrize("n", [1, 17, 255, 400])
def test_nsa(n):
    rng = np.random.default_rng(n)
    q, k, v = randn(rng, 1, 4, n, 64), randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64)
    gates = rng.random((1, 4, n, 3), dtype=np.float32)
    out = nsa_kernel()(q, k, v, gates)
    want = ref.nsa(q, k, v, gates, block=32, topn=3, window=48)
    assert relative_error(out, want) <= TOL


def test_nsa_selecting_every_block_with_gates_010_is_causal_attention():
    rng = np.random.default_rng(8)
    q, k, v = randn(rng, 1, 4, 90, 64), randn(rng, 1, 2, 90, 64), randn(rng, 1, 2, 90, 64)
    gates = np.zeros((1, 4, 90, 3), np.float32)
    gates[..., 1] = 1
    out = nsa_kernel()(q, k, v, gates)  # 3 blocks of 32 cover 90 keys
    assert relative_error(out, exact(q, k, v, causal=True)[0]) <= TOL


@pytest.mark.parametrize("n,block", [(1, 16), (200, 32), (333, 64)])
def test_hyper_attention(n, block):
    rng = np.random.default_rng(n)
    q, k, v = randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64)
    projection = randn(rng, 64, 5)
    samples = rng.integers(0, n, 24).astype(np.int32)
    o, lse = hyperattention.hyper_attention(q, k, v, projection, samples, block=block)
    ro, rl = ref.hyper_attention(q, k, v, projection, samples, block=block)
    assert relative_error(o, ro) <= TOL and relative_error(lse, rl) <= TOL


def test_hyper_attention_with_one_block_is_exact_attention():
    rng = np.random.default_rng(9)
    q, k, v = randn(rng, 1, 2, 150, 64), randn(rng, 1, 2, 150, 64), randn(rng, 1, 2, 150, 64)
    samples = rng.integers(0, 150, 16).astype(np.int32)
    o, lse = hyperattention.hyper_attention(q, k, v, randn(rng, 64, 5), samples, block=256)
    ro, rl = exact(q, k, v)
    assert relative_error(o, ro) <= TOL and relative_error(lse, rl) <= TOL


# 300 and 512 run depth by depth (every halving even), 257 recurses half by half
@pytest.mark.parametrize("n,min_len", [(300, 80), (512, 64), (257, 64), (100, 128)])
def test_hyper_attention_causal(n, min_len):
    rng = np.random.default_rng(n)
    q, k, v = randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64), randn(rng, 1, 2, n, 64)
    projection = randn(rng, 64, 4)
    per_depth = [rng.integers(0, n >> (d + 1), 16).astype(np.int32) for d in range(4)]
    o, lse = hyperattention.hyper_attention_causal(q, k, v, projection, per_depth, block=32,
                                                   min_seq_len=min_len)
    ro, rl = ref.hyper_attention_causal(q, k, v, projection, per_depth, block=32,
                                        min_seq_len=min_len)
    assert relative_error(o, ro) <= TOL and relative_error(lse, rl) <= TOL


def test_program_errors_name_what_is_wrong():
    with pytest.raises(tessera.SpecError, match="inside a function given to tessera.program"):
        tessera.compress(np.zeros((1, 1, 4, 64), np.float32), block=2)
    with pytest.raises(tessera.SpecError, match="declare every parameter"):
        tessera.program(lambda q, k: tessera.compress(k, block=2), q="B H N D")
    with pytest.raises(tessera.SpecError, match="block must be a positive int"):
        tessera.program(lambda k: tessera.compress(k, block=0), k="B H N D")
    with pytest.raises(tessera.SpecError, match="projection must be float32"):
        tessera.program(lambda x, r: tessera.lsh_sort(x, r), x="B H N D", r="D 4")
    with pytest.raises(tessera.SpecError, match="GPU programs take bfloat16 or float16"):
        tessera.compile(moba.moba_spec(), head_dim=64, target="cuda")
    # On the GPU, block_topk over whole query blocks (block_q > 1) sums a block's rows
    # through a one-row tile, which has no GPU layout yet: the compiler says where (no
    # GPU needed). Per-token selections (MoBA, NSA) compile (test/gpu/cases.py).
    def whole_blocks(q, k, v):
        chosen = tessera.block_topk(q, tessera.compress(k, block=64), block_q=64, block_k=64,
                                    k=3, causal=True, include_current=True)
        return tessera.attention(causal=True, block_sparse=(64, 64))(
            q, k, v, block_indices=chosen)[0]
    with pytest.raises(tessera.CompileError, match="a tile of 1 rows cannot be spread"):
        tessera.compile(tessera.program(whole_blocks, q="B H N D", k="B G N D", v="B G N D"),
                        head_dim=64, dtype="bfloat16", target="cuda")
    kern = moba_kernel(64, 3)
    q = np.zeros((1, 4, 10, 64), np.float32)
    with pytest.raises(ValueError, match=r"input 'k' dim 2 \(N\) is 9, but N = 10"):
        kern(q, np.zeros((1, 2, 9, 64), np.float32), np.zeros((1, 2, 9, 64), np.float32))
    with pytest.raises(TypeError, match="has dtype float64"):
        kern(q.astype(np.float64), q, q)
    with pytest.raises(TypeError, match="missing inputs"):
        kern(q, q)
