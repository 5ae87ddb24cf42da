"""Programs of several attn ops on the GPU (intermediates in workspaces) against float64.
Skipped where there is no GPU."""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
from gpu_reference import reference, rel  # noqa: E402

KERNELS = cases.program_kernels()


def randn(*shape):
    return torch.randn(*shape, device="cuda", dtype=torch.bfloat16)


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n,m", [(1, 1), (17, 40), (1000, 333), (4097, 1000)])
def test_split_merge_equals_attention_over_both(d, n, m):
    torch.manual_seed(n + d)
    q, k1, v1, k2, v2 = randn(2, 4, n, d), randn(2, 2, m, d), randn(2, 2, m, d), \
        randn(2, 2, m, d), randn(2, 2, m, d)
    out = KERNELS["split-merge", d](q, k1, v1, k2, v2)
    ref = reference(q, torch.cat([k1, k2], 2), torch.cat([v1, v2], 2))
    err = rel(out, ref)
    print(f"split-merge d={d} n={n} m={m}: {err:.2e}")
    assert err <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n,m", [(1, 1), (17, 17), (1000, 300), (4097, 2000)])
def test_permuted_queries_equal_attention(d, n, m):
    torch.manual_seed(n * 3 + d)
    q, k, v = randn(2, 4, n, d), randn(2, 2, m, d), randn(2, 2, m, d)
    perm = torch.randperm(n, device="cuda").int()
    out = KERNELS["permuted", d](q, k, v, perm)
    err = rel(out, reference(q, k, v))
    print(f"permuted d={d} n={n} m={m}: {err:.2e}")
    assert err <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 64, 1000, 4097])
def test_pooled_keys_are_block_means(d, n):
    torch.manual_seed(n + 5 * d)
    k = randn(2, 2, n, d)
    out = KERNELS["pooled", d](k)
    blocks = n // 64  # only whole blocks are pooled (SEMANTICS §5)
    assert out.shape == (2, 2, blocks, d)
    if blocks:
        ref = k[:, :, :blocks * 64].double().reshape(2, 2, blocks, 64, d).mean(3)
        assert rel(out, ref) <= 4e-3


def test_bad_program_inputs_are_reported():
    kernel = KERNELS["permuted", 64]
    q, k, v = randn(1, 2, 100, 64), randn(1, 2, 50, 64), randn(1, 2, 50, 64)
    with pytest.raises(TypeError, match="input 'perm' must be a int32 tensor"):
        kernel(q, k, v, torch.arange(100, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"input 'perm' dim 0 \(N\) is 99, but N = 100"):
        kernel(q, k, v, torch.arange(99, device="cuda", dtype=torch.int32))
    with pytest.raises(TypeError, match="dtype"):
        kernel(q.float(), k, v, torch.arange(100, device="cuda", dtype=torch.int32))


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 100, 1000, 4097])
def test_nsa_compression_branch(d, n):
    # compress feeds attention: the pooled keys are a workspace sized floor(N / 64).
    torch.manual_seed(n + 7 * d)
    q, k, v = randn(2, 4, n, d), randn(2, 2, n, d), randn(2, 2, n, d)
    out = KERNELS["nsa-compressed", d](q, k, v)
    blocks = n // 64
    pool = lambda x: x[:, :, :blocks * 64].double().reshape(2, 2, blocks, 64, d).mean(3)  # noqa: E731
    if blocks == 0:
        assert torch.equal(out, torch.zeros_like(out))
        return
    ref = reference(q, pool(k), pool(v), mask_mod=lambda i, j: j * 64 + 63 <= i)
    err = rel(out, ref)
    print(f"nsa-compressed d={d} n={n}: {err:.2e}")
    assert err <= 4e-3


def gated_inputs(b, hk, n, d, seed):
    """q (4 heads), k, v (hk heads) and float32 gates [b, 4, n, 3] in [0, 1)."""
    torch.manual_seed(seed)
    return (randn(b, 4, n, d), randn(b, hk, n, d), randn(b, hk, n, d),
            torch.rand(b, 4, n, 3, device="cuda", dtype=torch.float32))


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 100, 1000, 4097])
def test_gated_branches(d, n):
    # Gate columns are [rows, 1] tiles: each thread holds its rows whole (RowSpan).
    q, k, v, gates = gated_inputs(2, 2, n, d, seed=n + 11 * d)
    out = KERNELS["gated", d](q, k, v, gates)
    g = gates.double()
    ref = (g[..., 0:1] * reference(q, k, v) + g[..., 1:2] * reference(q, k, v, causal=True)
           + g[..., 2:3] * reference(q, k, v, causal=True, window=100))
    err = rel(out, ref)
    print(f"gated d={d} n={n}: {err:.2e}")
    assert err <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 100, 1000])
def test_nsa_whole(d, n):
    # N <= 16 blocks of 64: every block is selected, so the check does not hinge on how
    # near-equal gate scores rank in bf16 products against float64.
    from tessera import reference_sparse
    q, k, v, gates = gated_inputs(1, 1, n, d, seed=n + 13 * d)
    out = KERNELS["nsa", d](q, k, v, gates)
    ref = reference_sparse.nsa(*(x.float().cpu().numpy() for x in (q, k, v, gates)),
                               block=64, topn=16, window=128)
    err = rel(out, torch.from_numpy(ref).cuda())
    print(f"nsa d={d} n={n}: {err:.2e}")
    assert err <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 100, 500])
def test_moba_whole(d, n):
    # N <= 8 blocks of 64: every block is selected (see test_nsa_whole); MoBA then equals
    # causal attention.
    torch.manual_seed(n + 17 * d)
    q, k, v = randn(1, 4, n, d), randn(1, 2, n, d), randn(1, 2, n, d)
    out = KERNELS["moba", d](q, k, v)
    err = rel(out, reference(q, k, v, causal=True))
    print(f"moba d={d} n={n}: {err:.2e}")
    assert err <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n", cases.HYPER_LENGTHS)
def test_hyper_attention_whole(d, n):
    # The sort's hash products run in bf16: R is rounded to bf16 first (the reference
    # takes the same R), so only f32 accumulation separates them from float64.
    from tessera import reference_sparse
    torch.manual_seed(n + 19 * d)
    q, k, v = randn(1, 2, n, d), randn(1, 2, n, d), randn(1, 2, n, d)
    projection = torch.randn(d, cases.HYPER_BITS, device="cuda").bfloat16().float()
    samples = torch.randint(0, n, (cases.HYPER_SAMPLES,), device="cuda", dtype=torch.int32)
    o, lse = cases.hyper_kernels(lengths=(n,), dims=(d,))[n, d](q, k, v, projection, samples)
    host = [x.float().cpu().numpy() for x in (q, k, v, projection)]
    ro, rl = reference_sparse.hyper_attention(*host, samples.cpu().numpy(),
                                              block=cases.HYPER_BLOCK)
    err_o = rel(o, torch.from_numpy(ro).cuda())
    err_l = rel(lse, torch.from_numpy(rl).cuda())
    print(f"hyper d={d} n={n}: o {err_o:.2e} lse {err_l:.2e}")
    assert err_o <= 4e-3 and err_l <= 4e-3


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_hyper_attention_causal(d):
    # Two even halvings: the leaves as one exact call and each depth's quadrants as one
    # program call over extra heads (strided views), against the recursive reference.
    import torch
    from tessera import reference_sparse
    n, min_len = cases.HYPER_CAUSAL_N, cases.HYPER_MIN_SEQ_LEN
    kernels = cases.hyper_causal_kernels((d,))[d]
    torch.manual_seed(d)
    q, k, v = randn(1, 2, n, d), randn(1, 2, n, d), randn(1, 2, n, d)
    projection = torch.randn(d, cases.HYPER_BITS, device="cuda").bfloat16().float()
    samples = [torch.randint(0, n >> (depth + 1), (cases.HYPER_SAMPLES,), device="cuda",
                             dtype=torch.int32) for depth in range(2)]
    o, lse = cases.hyperattention_example().causal_recursion(
        q, k, v, samples, min_seq_len=min_len,
        exact=lambda q, k, v: kernels["exact"](q, k, v, return_lse=True),
        cross=lambda q, k, v, s: kernels[q.shape[2]](q, k, v, projection, s),
        merge=kernels["merge"], concat=lambda a, b: torch.cat([a, b], 2))
    host = [x.float().cpu().numpy() for x in (q, k, v, projection)]
    ro, rl = reference_sparse.hyper_attention_causal(
        *host, [s.cpu().numpy() for s in samples], block=cases.HYPER_BLOCK,
        min_seq_len=min_len)
    err_o = rel(o, torch.from_numpy(ro).cuda())
    err_l = rel(lse, torch.from_numpy(rl).cuda())
    print(f"hyper-causal d={d} n={n}: o {err_o:.2e} lse {err_l:.2e}")
    assert err_o <= 4e-3 and err_l <= 4e-3
