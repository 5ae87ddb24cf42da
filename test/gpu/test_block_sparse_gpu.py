"""Block-sparse softmax attention (key-block lists per query block) on the GPU against a
float64 reference of the same lists. Skipped where there is no GPU."""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
from gpu_reference import reference, rel  # noqa: E402

KERNELS = cases.block_sparse_kernels()


def random_lists(gen, b, h, nq, nk, blocks, k, ascending=False):
    """Unsorted lists with repeats, -1 padding and an out-of-range entry, or ascending
    lists of distinct blocks (as top-k selections give them) with -1 padding."""
    bq, bk = blocks
    nqb, nkb = -(-nq // bq), -(-nk // bk)
    lists = torch.randint(0, nkb, (b, h, nqb, k), generator=gen, dtype=torch.int32)
    lists[..., -1] = -1
    lists[..., 0] = lists[..., 1]  # a repeat
    if ascending:
        lists = torch.rand(b, h, nqb, nkb, generator=gen).argsort(-1)[..., :k].sort(-1).values
        lists = lists.int()
        lists[..., -1] = -1
    elif nqb > 1:
        lists[0, 0, 1, 2] = nkb + 3
    return lists.cuda()


def listed_keys(lists, blocks, nq, nk):
    """[B, H or 1, Nq, Nk] bool: the keys of the blocks listed for each query's block."""
    bq, bk = blocks
    nkb = -(-nk // bk)
    idx = lists.long()
    idx = torch.where((idx >= 0) & (idx < nkb), idx, torch.full_like(idx, nkb))
    keep = torch.zeros(*idx.shape[:3], nkb + 1, dtype=torch.bool, device=idx.device)
    keep.scatter_(3, idx, True)
    keep = keep[..., :nkb].repeat_interleave(bq, 2)[:, :, :nq]
    return keep.repeat_interleave(bk, 3)[..., :nk]


def listed_error(kernel, name, d, nq, nk, list_heads, ascending):
    """`kernel` (a block-sparse case's spec) on random inputs and lists, output poisoned
    first: its relative error against float64."""
    spec, _ = cases.BLOCK_SPARSE[name]
    gen = torch.Generator().manual_seed(nq + d)
    torch.manual_seed(nq + d)
    q = torch.randn(2, 4, nq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, 2, nk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(2, 2, nk, d, device="cuda", dtype=torch.bfloat16)
    lists = random_lists(gen, 2, list_heads, nq, nk, spec.block_sparse, 4, ascending)
    out = torch.full((2, 4, nq, d), float("nan"), device="cuda", dtype=torch.bfloat16)
    kernel(q, k, v, block_indices=lists, out=out)
    torch.cuda.synchronize()
    return rel(out, reference(q, k, v, causal=spec.causal,
                              keep=listed_keys(lists, spec.block_sparse, nq, nk)))


@pytest.mark.parametrize("name", list(cases.BLOCK_SPARSE))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,list_heads,ascending", [
    (1, 1, 1, False), (17, 17, 4, False), (1000, 1000, 1, False), (1000, 1000, 4, True),
    (4097, 4097, 4, False), (4097, 4097, 1, True), (100, 300, 4, True)])
def test_matches_float64(name, d, nq, nk, list_heads, ascending):
    err = listed_error(KERNELS[name, d], name, d, nq, nk, list_heads, ascending)
    print(f"{name} d={d} nq={nq} nk={nk} list heads {list_heads} ascending {ascending}: "
          f"{err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


def test_bad_lists_are_reported():
    kernel = KERNELS["blocks-causal", 64]
    q = torch.randn(1, 2, 300, 64, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="block-sparse"):
        kernel(q, q, q)
    with pytest.raises(ValueError, match=r"block_indices must be int32 of shape \(1, 1 or 2, 3, K\)"):
        kernel(q, q, q, block_indices=torch.zeros(1, 2, 2, 4, dtype=torch.int32, device="cuda"))
    with pytest.raises(ValueError, match="int32"):
        kernel(q, q, q, block_indices=torch.zeros(1, 2, 3, 4, dtype=torch.int64, device="cuda"))
    with pytest.raises(TypeError, match="on cuda"):
        kernel(q, q, q, block_indices=torch.zeros(1, 2, 3, 4, dtype=torch.int32))
